"""Benchmark: can the sandbox service carry the original load, and how noisy are repeat runs?

    .venv/bin/python -m ult_pipeline_tests.bench.sandbox_capacity [--duration 60s] [--runs 2] [--rate 22]

Starts a sandbox of its own, seeds `standard` once, then runs the student journey at the
default 22 iterations/s (176 requests/s) --runs times on the same data. Prints achieved
rate, error rate and per-operation p50/p95/p99 for each run, then the run-to-run
coefficient of variation of each operation's p95. Target: achieved rate within 1 % of the
target, p95 < 100 ms, no errors.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import run_load_test
from ult_pipeline.loadtest.runner import K6Runner
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.run import prepare
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.wipe import wipe
from ult_pipeline_tests.conftest import free_port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rate", type=float, default=22.0)
    parser.add_argument("--scenario", default="student_landing")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ult-cap-"))
    settings = SandboxSettings(home=home, port=free_port(), external_dsn=None, aws_port=free_port())
    status = manager.up(settings)
    try:
        prepared = prepare(
            client=GraphQLClient(status.url, api_key=status.api_key), dataset=generate(PROFILES["standard"], 1),
            signer=TokenSigner(), identities_path=home / "identities.json",
            wipe=lambda: wipe(status.dsn, settings.environment, restart_service=lambda: manager.restart_service(settings)),
        )
        profile = get_load_profile("default").with_overrides(duration=args.duration, rate=args.rate, scenario=args.scenario)
        p95s = {}
        for run in range(1, args.runs + 1):
            result = run_load_test(
                runner=K6Runner(), target_url=status.url, identities_path=prepared.identities_path, profile=profile,
                out_dir=home / f"run{run}", dataset_hash=prepared.dataset_hash,
            )
            ops = result.operations.set_index("operation")
            print(f"run {run}: target {profile.rate:g} it/s for {profile.duration}, achieved {result.achieved_rate:.2f} it/s "
                  f"({result.achieved_rate / profile.rate - 1:+.2%}), dropped {result.ingested.dropped_iterations}, "
                  f"requests {int(ops.loc['__all__', 'count'])}, error rate {ops.loc['__all__', 'error_rate']:.4f}")
            print(ops[["count", "error_rate", "p50", "p95", "p99"]].to_string(float_format=lambda v: f"{v:.2f}"))
            p95s[f"run{run}"] = ops["p95"]
        if args.runs > 1:
            table = pd.DataFrame(p95s)
            table["cv_%"] = table.std(axis=1, ddof=1) / table.mean(axis=1) * 100
            table["max_diff_%"] = (table.max(axis=1) - table.min(axis=1)) / table.mean(axis=1) * 100
            print("\nper-operation p95 (ms) across runs, with the run-to-run coefficient of variation:")
            print(table.to_string(float_format=lambda v: f"{v:.2f}"))
            print(f"median CV of p95 over operations: {table['cv_%'].median():.1f} %")
    finally:
        manager.down(settings, purge=True)


if __name__ == "__main__":
    main()
