"""Benchmark: `ult` start-up, against `python -c pass` measured in the same run.

    .venv/bin/python -m ult_pipeline_tests.bench.cli_startup [--runs 9] [--builds 12] [--json]

Each command runs in a fresh process, `--runs` times; the rounds are interleaved (one run of every
command per round) so a busy machine slows them alike. Prints the median and the fastest run of
each, and the median's ratio to the `python -c pass` baseline.
Targets: `ult --help` and `ult analyze SMALL.csv` under 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0


def ult_command() -> list[str]:
    """The installed `ult` script beside this Python, else `python -m ult_pipeline.cli`."""
    script = Path(sys.executable).parent / "ult"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ult_pipeline.cli"]


def small_history(path: Path, builds: int) -> Path:
    """A flat history of `builds` builds, every operation and metric: what CI appends to per build."""
    from ult_pipeline_tests.analysis.history_fixtures import history

    history(builds, cv=0.02, seed=2).to_csv(path, index=False)
    return path


def time_once(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          timeout=120)
    return time.perf_counter() - start, done.returncode


def measure(commands: dict[str, list[str]], runs: int) -> dict[str, dict]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, set[int]] = {name: set() for name in commands}
    for argv in commands.values():  # warm the page cache: the first run reads every .pyc from disk
        time_once(argv)
    for _ in range(runs):
        for name, argv in commands.items():
            seconds, code = time_once(argv)
            times[name].append(seconds)
            codes[name].add(code)
    baseline = statistics.median(times["python -c pass"])
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "runs": len(t),
                   "ratio_to_python": statistics.median(t) / baseline, "exit_codes": sorted(codes[name])}
            for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--builds", type=int, default=12, help="builds in the generated history")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    ult = ult_command()
    with tempfile.TemporaryDirectory(prefix="ult-bench-") as folder:
        csv = small_history(Path(folder) / "history.csv", args.builds)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "ult --help": [*ult, "--help"],
            "ult analyze --help": [*ult, "analyze", "--help"],
            f"ult analyze ({args.builds} builds, table)": [*ult, "analyze", str(csv)],
            f"ult analyze ({args.builds} builds, json)": [*ult, "analyze", str(csv), "--output", "json"],
        }
        results = measure(commands, args.runs)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'command':<34} {'median':>8} {'fastest':>8} {'x python':>9}  exit")
    for name, r in results.items():
        print(f"{name:<34} {r['median_s']:>7.3f}s {r['min_s']:>7.3f}s {r['ratio_to_python']:>8.1f}x  "
              f"{','.join(map(str, r['exit_codes']))}")
    slow = [name for name in ("ult --help", f"ult analyze ({args.builds} builds, table)")
            if results[name]["median_s"] >= TARGET_S]
    print(f"target: under {TARGET_S:g} s for ult --help and ult analyze: {'missed by ' + ', '.join(slow) if slow else 'met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
