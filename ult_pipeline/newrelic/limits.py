"""New Relic's documented ingest limits, in one place.

Sources (New Relic docs): "Data requirements and limits for custom event data" (Event API) and
"Metric API: limits and restricted characters". New Relic accepts a POST that breaks most of
these with a 2xx and drops the data afterwards (visible only as ``NrIntegrationError`` events),
so the client enforces them before sending:

* payload: at most 1 MB (10^6 bytes) of JSON per POST (before and after gzip);
* Event API: at most 255 attributes per event (``eventType`` included), attribute names of at
  most 255 characters, string values of at most 4096 characters; ``timestamp`` (Unix seconds
  or milliseconds) within one day (24 h) of New Relic's clock, either way;
* Metric API: at most 100 attributes per metric (the documented limit has been 100 and 150; the
  smaller one is used), the same name and value lengths; timestamps within the last 48 h.
"""

from __future__ import annotations

MAX_PAYLOAD_BYTES = 1_000_000
MAX_EVENT_ATTRIBUTES = 255
MAX_METRIC_ATTRIBUTES = 100
MAX_ATTRIBUTE_NAME_LENGTH = 255
MAX_STRING_VALUE_LENGTH = 4096
EVENT_MAX_AGE_S = 24 * 3600
EVENT_MAX_AHEAD_S = 24 * 3600
METRIC_MAX_AGE_S = 48 * 3600
METRIC_MAX_AHEAD_S = 24 * 3600  # not documented for metrics; the events' rule, so a skewed clock is caught


def timestamp_ms(value: int | float) -> int:
    """A New Relic timestamp (Unix seconds or milliseconds, as New Relic accepts both) in milliseconds."""
    return int(value * 1000) if value < 100_000_000_000 else int(value)
