"""Asset metadata is for display only: no module of the pipeline reads it back.

Results and history travel through files (the history store, verdict.json, telemetry_gap.json)
and asset inputs; renaming a column in the UI must never change what the analysis reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import ult_pipeline

PACKAGE = Path(ult_pipeline.__file__).parent
# Ways of reading materializations (and so their metadata) back from Dagster's event log.
READS = re.compile(r"fetch_materializations|get_latest_materialization|latest_metadata|get_asset_records"
                   r"|asset_materialization\s*\.\s*metadata|get_event_records\([^)]*ASSET_MATERIALIZATION")
# None allowed. A display-only reader, if one is ever needed, goes here with why.
ALLOWED: dict[str, str] = {}


def offenders() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if READS.search(line) and name not in ALLOWED:
                found.append(f"ult_pipeline/{name}:{number}: {line.strip()}")
    return found


def test_no_module_reads_materialization_metadata():
    assert not offenders(), "\n".join(["asset metadata is for display; read the stores instead:", *offenders()])


def test_the_check_finds_a_reader():
    assert READS.search("records = instance.fetch_materializations(f, limit=1)")
    assert READS.search("meta = record.asset_materialization.metadata")
    assert READS.search("instance.get_latest_materialization_event(key)")
    assert not READS.search("yield dg.Output(value, metadata=result_metadata(result))")
