"""Old import path, kept for callers written before the split (issue 12).

New code imports from :mod:`.ingest` (Event/Metric API), :mod:`.nerdgraph` (NRQL),
:mod:`.transport` (endpoints, errors, retries) and :mod:`ult_pipeline.telemetry.newrelic`
(the server-view NRQL and its parsing).
"""

from ult_pipeline.newrelic.ingest import DEFAULT_MAX_BATCH_BYTES, NewRelicClient, SendReport
from ult_pipeline.newrelic.nerdgraph import OTHER_API_NERDGRAPH_NRQL_QUERY, NerdGraphClient
from ult_pipeline.newrelic.transport import NewRelicEndpoints, NewRelicError
from ult_pipeline.telemetry.newrelic import (
    nrql_string,
    operation_from_transaction_name,
    parse_server_view,
    server_view_nrql,
)

__all__ = [
    "DEFAULT_MAX_BATCH_BYTES",
    "OTHER_API_NERDGRAPH_NRQL_QUERY",
    "NerdGraphClient",
    "NewRelicClient",
    "NewRelicEndpoints",
    "NewRelicError",
    "SendReport",
    "nrql_string",
    "operation_from_transaction_name",
    "parse_server_view",
    "server_view_nrql",
]
