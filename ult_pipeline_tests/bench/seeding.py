"""Benchmark: seeding through the sandbox's API at concurrency 1 (sequential baseline), 2, 4, 8.

    .venv/bin/python -m ult_pipeline_tests.bench.seeding [--profiles standard large] [--concurrency 1 2 4 8]
                                                         [--no-cli]

Starts a sandbox of its own (temporary home, free port; it refuses bodies above 100 KB like the
real service), then for each profile and concurrency, in one run: wipe (recreate, service
restart included) + seed + verify. Prints, per profile, the wall time per concurrency against
the sequential baseline, then calls/s per stage and concurrency; then `ult seed --profile
large` at the CLI's default concurrency, timed.

To see what limits seeding, each row also gives the CPU the client (this process), the sandbox
service and its PostgreSQL used, in cores on average over seeding + verify, and how busy the
whole machine was (other work included; 2.0 = both cores busy): a service near 1.0 core is the limit (one Python
process), a client near 1.0 would be. Targets on a 2-core machine: `large` in at most 75 s;
`standard` at least 2x faster than sequential.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.plan import BODY_LIMIT
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.run import PreparedDataset, prepare
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.wipe import wipe
from ult_pipeline_tests.conftest import free_port

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_cpu_s(pgdata: Path) -> float:
    """CPU seconds of the sandbox's PostgreSQL: the postmaster with its reaped children, plus
    the backends alive now."""
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15]) / TICKS
        elif int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    # user nice system idle iowait irq softirq steal (guest time is inside user already)
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def payload_too_large_count(base_url: str) -> float:
    import requests

    text = requests.get(f"{base_url}/user/metrics", timeout=10).text
    match = re.search(r'ult_sandbox_graphql_requests_total\{operation="payload_too_large"\} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


def run_one(settings: SandboxSettings, status, profile, concurrency: int) -> tuple[PreparedDataset, dict]:
    dataset = generate(profile, 1)
    client = GraphQLClient(status.url, api_key=status.api_key)
    marks: dict = {}

    def wipe_then_mark():
        result = wipe(status.dsn, settings.environment, restart_service=lambda: manager.restart_service(settings))
        # Measured from here: the seeding alone (the service was restarted by the wipe).
        marks["pid"] = manager.status(settings).service_pid
        marks["service"] = process_cpu_s(marks["pid"])
        marks["postgres"] = postgres_cpu_s(settings.pgdata)
        marks["client"] = time.process_time()
        marks["machine"] = machine_busy()
        marks["at"] = time.perf_counter()
        return result

    started = time.perf_counter()
    prepared = prepare(client=client, dataset=dataset, signer=TokenSigner(), identities_path=settings.home / "ids.json",
                       concurrency=concurrency, wipe=wipe_then_mark)
    total = time.perf_counter() - started
    client.close()
    assert prepared.counts_match, (prepared.expected_counts, prepared.actual_counts)
    # The service restarted with the wipe: its count covers this seeding and verify only.
    refused = payload_too_large_count(status.base_url)
    assert refused == 0, f"the sandbox refused {refused:.0f} bodies above {BODY_LIMIT:,} bytes"
    # CPU over seeding + verify (from the end of the wipe to here), as cores busy on average.
    seconds = time.perf_counter() - marks["at"]
    busy, _ = machine_busy()
    usage = {
        "total": total,
        "service_cores": (process_cpu_s(marks["pid"]) - marks["service"]) / max(seconds, 1e-9),
        "postgres_cores": (postgres_cpu_s(settings.pgdata) - marks["postgres"]) / max(seconds, 1e-9),
        "client_cores": (time.process_time() - marks["client"]) / max(seconds, 1e-9),
        "machine_cores": (busy - marks["machine"][0]) / max(seconds, 1e-9),
    }
    return prepared, usage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", nargs="+", default=["standard", "large"], choices=sorted(PROFILES))
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--no-cli", action="store_true", help="skip `ult seed --profile large`")
    parser.add_argument("--repeat", type=int, default=0,
                        help="runs per profile and concurrency (default: 5, 1 above 20,000 students)")
    args = parser.parse_args()
    levels = sorted(set(args.concurrency) | {1})
    home = Path(tempfile.mkdtemp(prefix="ult-bench-"))
    settings = SandboxSettings(home=home, port=free_port(), external_dsn=None, aws_port=free_port())
    status = manager.up(settings)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
          f"sandbox body limit {BODY_LIMIT:,} bytes", flush=True)
    try:
        for name in args.profiles:
            profile = PROFILES[name]
            repeat = args.repeat if args.repeat else (1 if profile.students > 20_000 else 5)
            every: dict[int, list[tuple[PreparedDataset, dict]]] = {c: [] for c in levels}
            print(f"\n{name}: {profile.users:,} users, {profile.students:,} students; "
                  f"{repeat} run(s) per concurrency, interleaved, the median shown", flush=True)
            for _ in range(repeat):
                for concurrency in levels:
                    every[concurrency].append(run_one(settings, status, profile, concurrency))
            # The run of median seeding time per concurrency stands for it (the machine is shared).
            runs = {c: sorted(r, key=lambda x: x[0].seeding.seconds)[len(r) // 2] for c, r in every.items()}
            print(f"{'conc':>5} {'seed s':>7} {'(min-max)':>13} {'total s':>8} {'calls':>6} {'calls/s':>8} {'vs seq':>7} "
                  f"{'service cores':>14} {'postgres cores':>15} {'client cores':>13} {'machine busy':>13} "
                  f"{'largest body':>13}", flush=True)
            for concurrency in levels:
                prepared, usage = runs[concurrency]
                seeding = prepared.seeding
                seeds = [p.seeding.seconds for p, _ in every[concurrency]]
                ratio = runs[1][0].seeding.seconds / seeding.seconds
                largest = max(s.largest_body for s in seeding.stages)
                print(f"{concurrency:>5} {seeding.seconds:>7.2f} {f'({min(seeds):.2f}-{max(seeds):.2f})':>13} "
                      f"{usage['total']:>8.2f} {seeding.calls:>6} {seeding.calls_per_second:>8.1f} {ratio:>6.2f}x "
                      f"{usage['service_cores']:>14.2f} {usage['postgres_cores']:>15.2f} {usage['client_cores']:>13.2f} "
                      f"{usage['machine_cores']:>13.2f} {largest:>13,}", flush=True)
            print(f"\n{name}: calls/s per stage (seconds, from its start to its end: stages overlap and share "
                  "the calls in flight), by concurrency", flush=True)
            print(f"{'stage':>34} " + " ".join(f"{'c=' + str(c) + ' calls':>12} {'calls/s (s)':>16}" for c in levels))
            for stage in runs[1][0].seeding.stages:
                cells = []
                for c in levels:
                    t = next(t for t in runs[c][0].seeding.stages if t.name == stage.name)
                    cells.append(f"{t.calls:>12} {f'{t.calls_per_second:.1f} ({t.seconds:.2f})':>16}")
                print(f"{stage.name:>34} " + " ".join(cells), flush=True)
            best = min(levels, key=lambda c: runs[c][1]["total"])
            print(f"{name}: median time incl. wipe and verify: "
                  + ", ".join(f"c={c} {runs[c][1]['total']:.1f} s" for c in levels)
                  + f"; fastest c={best}, {runs[1][1]['total'] / runs[best][1]['total']:.2f}x sequential", flush=True)
        if not args.no_cli:
            env = {**os.environ, "ULT_SANDBOX_HOME": str(settings.home), "ULT_SANDBOX_PORT": str(settings.port),
                   "ULT_RESULTS_DIR": str(home / "results")}
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "ult_pipeline.cli", "seed", "--profile", "large"],
                                  capture_output=True, text=True, env=env, timeout=900)
            seconds = time.perf_counter() - started
            print(f"\n`ult seed --profile large` (default concurrency): exit {done.returncode} in {seconds:.1f} s "
                  f"(wipe, seed, verify, identities; process start included)", flush=True)
            for line in done.stdout.splitlines():
                if line.startswith(("seeded", "wiped", "counts", "seeding:")):
                    print(f"  {line}")
            if done.returncode:
                print(done.stderr[-2000:])
            print(f"bodies the sandbox refused (413) during `ult seed`: {payload_too_large_count(status.base_url):.0f}")
    finally:
        manager.down(settings, purge=True)


if __name__ == "__main__":
    main()
