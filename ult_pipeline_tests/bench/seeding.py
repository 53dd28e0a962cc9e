"""Benchmark: seeding through the sandbox's API, concurrent versus one call at a time.

    .venv/bin/python -m ult_pipeline_tests.bench.seeding [--concurrency 4]

Starts a sandbox of its own (temporary home, free port), then for each dataset: wipe
(recreate, service restart included) + seed + verify, once with the configured
concurrency and once sequentially (the baseline, same run). Targets on a 2-core machine:
`standard` in at most 5 s including the wipe; time growing linearly with students.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES, DatasetProfile
from ult_pipeline.seeding.run import prepare
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.wipe import wipe
from ult_pipeline_tests.conftest import free_port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ult-bench-"))
    settings = SandboxSettings(home=home, port=free_port(), external_dsn=None, aws_port=free_port())
    status = manager.up(settings)
    profiles = [
        PROFILES["standard"],
        DatasetProfile("students_5k", 1, 10, 4, 50, 5_000),
        DatasetProfile("students_10k", 1, 10, 4, 50, 10_000),
        DatasetProfile("students_20k", 1, 10, 4, 50, 20_000),
    ]
    print(f"{'dataset':>14} {'students':>9} {'conc':>5} {'wipe s':>7} {'seed s':>7} {'total s':>8} {'calls':>6} "
          f"{'calls/s':>8} {'s/1k students':>14} {'vs sequential':>14}")
    try:
        for profile in profiles:
            dataset = generate(profile, 1)
            totals = {}
            for concurrency in (args.concurrency, 1):
                client = GraphQLClient(status.url, api_key=status.api_key)
                started = time.perf_counter()
                prepared = prepare(
                    client=client, dataset=dataset, signer=TokenSigner(),
                    identities_path=home / "identities.json", concurrency=concurrency,
                    wipe=lambda: wipe(status.dsn, settings.environment,
                                      restart_service=lambda: manager.restart_service(settings)),
                )
                total = time.perf_counter() - started
                assert prepared.counts_match, (prepared.expected_counts, prepared.actual_counts)
                totals[concurrency] = total
                wipe_s = prepared.wipe.seconds + prepared.wipe.restart_seconds
                ratio = f"{totals[1] / totals[args.concurrency]:.2f}x faster" if concurrency == 1 else "baseline next"
                print(f"{profile.name:>14} {profile.students:>9} {concurrency:>5} {wipe_s:>7.2f} "
                      f"{prepared.seeding.seconds:>7.2f} {total:>8.2f} {prepared.seeding.calls:>6} "
                      f"{prepared.seeding.calls_per_second:>8.1f} {prepared.seeding.seconds / profile.students * 1000:>14.3f} "
                      f"{ratio:>14}")
    finally:
        manager.down(settings, purge=True)


if __name__ == "__main__":
    main()
