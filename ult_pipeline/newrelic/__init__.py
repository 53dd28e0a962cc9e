"""New Relic integration: custom events, Metric API gauges and NerdGraph (NRQL) queries.

Pure library (no Dagster): :mod:`.events` builds payloads, :mod:`.ingest` sends them,
:mod:`.nerdgraph` runs NRQL, :mod:`.transport` holds what both clients share (endpoints,
errors, the urllib3 retry policy), :mod:`.payload` stores and sends one build's export.
The server-view NRQL and its parsing live in :mod:`ult_pipeline.telemetry.newrelic`.
"""

from ult_pipeline.newrelic.events import gauges, operation_events, run_event
from ult_pipeline.newrelic.ingest import NewRelicClient, SendReport
from ult_pipeline.newrelic.nerdgraph import NerdGraphClient
from ult_pipeline.newrelic.transport import NewRelicEndpoints, NewRelicError

# Kept for callers of the old package surface; they belong to the telemetry comparison now.
from ult_pipeline.telemetry.newrelic import operation_from_transaction_name, parse_server_view, server_view_nrql

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
