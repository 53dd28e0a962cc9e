"""`ult analyze` as a CI gate: exit 1 on a regression, 0 on a flat history, 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from ult_pipeline_tests.analysis.history_fixtures import history


def analyze(*args):
    return subprocess.run([sys.executable, "-m", "ult_pipeline.cli", "analyze", *args],
                          capture_output=True, text=True, timeout=120)


def test_a_clear_step_exits_1_and_a_flat_history_0(tmp_path):
    step = tmp_path / "step.csv"
    history(12, slow_op="myClasses", slow_from=10, factor=1.4).to_csv(step, index=False)
    result = analyze(str(step))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "regressed" in result.stdout and "myClasses" in result.stdout
    flat = tmp_path / "flat.csv"
    history(12, seed=2).to_csv(flat, index=False)
    result = analyze(str(flat), "--output", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["verdict"] in ("unchanged", "improved")


def test_bad_input_exits_2_naming_the_problem(tmp_path):
    frame = history(3)
    missing = tmp_path / "missing.csv"
    frame.drop(columns="value").to_csv(missing, index=False)
    result = analyze(str(missing))
    assert result.returncode == 2 and "missing column(s) value" in result.stderr
    unknown = tmp_path / "unknown.csv"
    frame.assign(metric="p42").to_csv(unknown, index=False)
    assert "unknown metric(s) p42" in analyze(str(unknown)).stderr
    short = tmp_path / "short.csv"
    history(2).to_csv(short, index=False)
    result = analyze(str(short))
    assert result.returncode == 2 and "needs at least 2" in result.stderr
    assert analyze(str(tmp_path / "nope.csv")).returncode == 2


def test_json_output_is_strict_json_even_with_unbounded_intervals(tmp_path):
    # Four builds, the first two far apart: a confirmation window's interval has no upper bound.
    frame = history(4, cv=0.2, seed=5)
    path = tmp_path / "scattered.csv"
    frame.to_csv(path, index=False)
    result = analyze(str(path), "--output", "json")
    assert result.returncode in (0, 1), result.stderr

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    parsed = json.loads(result.stdout, parse_constant=refuse)
    assert parsed["metrics"] and all("p_adjusted" in row for row in parsed["metrics"])
