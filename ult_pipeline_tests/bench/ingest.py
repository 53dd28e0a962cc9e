"""Benchmark: ingesting k6's gzip CSV, against DuckDB reading the same file in the same run.

    .venv/bin/python -m ult_pipeline_tests.bench.ingest [--sizes 100000,2000000]

Each measurement runs in a fresh process so its peak memory (max RSS) is its own.
Targets: at most 1.5x DuckDB's time; at most 1.5 GB peak for 2 M requests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPS = ["me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions"]

_OURS = """
import json, resource, sys, time
from ult_pipeline.loadtest.ingest import ingest
t = time.perf_counter()
r = ingest(sys.argv[1], sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - t, "requests": r.requests,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# The same answer from DuckDB: one row per request read from the CSV, exact per-operation quantiles.
_DUCKDB = """
import json, resource, sys, time
import duckdb
t = time.perf_counter()
con = duckdb.connect()
rows = con.execute('''
    SELECT regexp_extract(extra_tags, 'operation=([^&]*)', 1) AS operation, count(*) AS n,
           quantile_cont(metric_value, [0.5, 0.9, 0.95, 0.99]) AS q, max(metric_value),
           avg(CASE WHEN expected_response = 'true' THEN 0 ELSE 1 END)
    FROM read_csv(?, header=true, all_varchar=false)
    WHERE metric_name = 'http_req_duration' GROUP BY 1
''', [sys.argv[1]]).fetchall()
print(json.dumps({"seconds": time.perf_counter() - t, "requests": sum(r[1] for r in rows),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,2000000")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ult-bench-ingest"))
    args = parser.parse_args()
    from ult_pipeline_tests.loadtest.k6_csv import write_k6_csv

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    print(f"{'requests':>10} {'csv MB':>8} {'ours s':>8} {'duckdb s':>9} {'ratio':>6} {'ours peak MB':>13} {'duckdb peak MB':>15}")
    for size in (int(s) for s in args.sizes.split(",")):
        csv = cache / f"k6-{size}.csv.gz"
        if not csv.exists():
            started = time.perf_counter()
            write_k6_csv(csv, size, OPS, seed=1, error_every=500)
            print(f"(generated {csv} in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
        ours = measure(_OURS, str(csv), str(cache / f"out-{size}"))
        duck = measure(_DUCKDB, str(csv))
        assert ours["requests"] == duck["requests"] == size, (ours, duck)
        print(
            f"{size:>10} {csv.stat().st_size / 2**20:>8.0f} {ours['seconds']:>8.2f} {duck['seconds']:>9.2f} "
            f"{ours['seconds'] / duck['seconds']:>6.2f} {ours['peak_mb']:>13.0f} {duck['peak_mb']:>15.0f}"
        )


if __name__ == "__main__":
    main()
