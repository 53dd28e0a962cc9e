"""New Relic integration: custom events, Metric API gauges and NerdGraph (NRQL) queries.

Pure library (no Dagster): :mod:`.events` builds payloads, :mod:`.client` sends them.
"""

from ult_pipeline.newrelic.client import (
    NerdGraphClient,
    NewRelicClient,
    NewRelicEndpoints,
    NewRelicError,
    SendReport,
    operation_from_transaction_name,
    parse_server_view,
    server_view_nrql,
)
from ult_pipeline.newrelic.events import gauges, operation_events, run_event

__all__ = [
    "NerdGraphClient",
    "NewRelicClient",
    "NewRelicEndpoints",
    "NewRelicError",
    "SendReport",
    "gauges",
    "operation_events",
    "operation_from_transaction_name",
    "parse_server_view",
    "run_event",
    "server_view_nrql",
]
