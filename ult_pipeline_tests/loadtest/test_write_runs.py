"""Real k6 write runs against the session's sandbox, through `ult run` (no wipe: each run seeds a fresh,
uniquely named tiny dataset beside the others): the admin_writes journey, and roster_contention with the
service's `--roster-writes` knob off (locked: nothing lost) and on (unlocked: lost writes, exit 1).

Bounded: 10-30 s of load at 2-4 iterations/s per run, loopback only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline_tests.k6.test_suite_static import K6
from ult_pipeline_tests.k6.test_write_scenarios_static import ADMIN_WRITES_OPERATIONS

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not K6.is_file(), reason=f"k6 binary not found at {K6}")]

ULT = Path(sys.executable).parent / "ult"


def _ult_run(sandbox_settings, results: Path, *args: str, timeout: float = 240) -> tuple[subprocess.CompletedProcess, dict]:
    """`ult run --no-wipe ...` on the session's sandbox; (the process, its result.json)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ULT_", "K6_"))}
    env.update({"ULT_SANDBOX_HOME": str(sandbox_settings.home), "ULT_SANDBOX_PORT": str(sandbox_settings.port),
                "ULT_SANDBOX_AWS_PORT": str(sandbox_settings.aws_port), "ULT_RESULTS_DIR": str(results)})
    before = set((results / "runs").glob("*")) if (results / "runs").exists() else set()
    proc = subprocess.run([str(ULT), "run", "--no-wipe", "--profile", "tiny", "--load", "short", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    (run_dir,) = set((results / "runs").glob("*")) - before
    result_file = run_dir / "k6" / "result.json"
    assert result_file.exists(), f"no result.json (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, json.loads(result_file.read_text())


def _counts(result: dict) -> dict[str, int]:
    return {row["operation"]: int(row["count"]) for row in result["operations"] if row["operation"] != "__all__"}


def test_admin_writes_sends_every_mutation_without_errors_and_repeats_exactly(sandbox, sandbox_settings, tmp_path):
    runs = []
    for _ in range(2):  # the second run over a freshly seeded dataset
        proc, result = _ult_run(sandbox_settings, tmp_path, "--scenario", "admin_writes", "--rate", "4",
                                "--duration", "30s")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        runs.append(result)
        counts = _counts(result)
        assert set(counts) == set(ADMIN_WRITES_OPERATIONS), counts
        assert result["totals"]["error_rate"] == 0, result["errors"]
        assert result["errors"] == {}
        assert abs(result["achieved_rate"] - result["target_rate"]) <= 0.01 * result["target_rate"], result
        # k6 starts rate x duration iterations (120), and sometimes one more right at the very end (121), which
        # the journey leaves empty (k6/lib/plan.js): every mutation exactly once per planned iteration.
        planned = 4 * 30
        assert result["totals"]["iterations"] in (planned, planned + 1)
        assert set(counts.values()) == {planned}, counts  # nine requests per planned iteration, none skipped
        writes = result["writes"]
        assert writes["createClasses"]["rows"] == 2 * planned and writes["addStudentsToClasses"]["rows"] == 4 * planned
        assert all(w["acknowledged"] == planned for w in writes.values())
        table = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
        assert set(ADMIN_WRITES_OPERATIONS) <= table  # each mutation has its row in the printed table
    # The same requests over a fresh dataset: the same per-operation counts.
    assert _counts(runs[0]) == _counts(runs[1])


def _contention(sandbox_settings, results: Path) -> tuple[subprocess.CompletedProcess, dict, dict]:
    proc, result = _ult_run(sandbox_settings, results, "--scenario", "roster_contention", "--rate", "2",
                            "--duration", "10s", "--writers", "12")
    contention = json.loads((Path(result["files"]["samples"]).parent / "contention.json").read_text())
    return proc, result, contention


def test_roster_contention_loses_nothing_with_locked_roster_writes(sandbox, sandbox_settings, tmp_path):
    proc, result, contention = _contention(sandbox_settings, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert contention["ok"] and contention["lost"] == 0
    assert contention["acknowledged"] == 12 * len(contention["classes"]) > 0
    assert result["contention"]["lost"] == 0
    assert f"lost writes: 0 of {contention['acknowledged']} acknowledged" in proc.stdout


def test_roster_contention_finds_lost_writes_with_unlocked_roster_writes(sandbox, sandbox_settings, tmp_path):
    manager.restart_service(sandbox_settings, ServiceKnobs(roster_writes="unlocked"))
    try:
        proc, result, contention = _contention(sandbox_settings, tmp_path)
    finally:
        manager.restart_service(sandbox_settings, ServiceKnobs())
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert contention["lost"] > 0 and not contention["ok"]
    lossy = [c for c in contention["classes"] if c["lost"]]
    assert lossy and all(c["present"] < c["acknowledged"] for c in lossy)
    line = next(line for line in proc.stderr.splitlines() if line.startswith("lost writes:"))
    assert line.startswith(f"lost writes: {contention['lost']} of {contention['acknowledged']} acknowledged (class ")
    assert lossy[0]["class_id"] in line
