"""`ult analyze` as a CI gate: exit 1 on a regression, 0 on a flat history, 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
from click.testing import CliRunner

import ult_pipeline.cli.analyze as analyze_module
from ult_pipeline.cli.main import cli
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
    history(12, cv=0.02, seed=2).to_csv(flat, index=False)
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


# Bad input, through the real command: exit 2 and one line on stderr naming the problem, never a
# traceback and never exit 1 (which CI reads as a regression).


def run(*args):
    return CliRunner(catch_exceptions=False).invoke(cli, ["analyze", *map(str, args)])


def bad_input(result, *phrases):
    """The one line on stderr, after checking exit 2 and that each of `phrases` is in it."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


def write(tmp_path, frame, name="history.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_repeated_rows_of_a_build_are_combined_by_their_median(tmp_path):
    frame = history(12, slow_op="myClasses", slow_from=10, factor=1.4)
    newest, older = frame["build"].iloc[-1], frame["build"].iloc[0]
    # A CI job re-run twice on the newest build, appended after the first run; an older build appended twice as is.
    runs = frame[frame["build"] == newest]
    later = runs["pushed_at"] + pd.Timedelta(minutes=30)
    repeated = pd.concat([frame, runs.assign(value=runs["value"] * 0.8, pushed_at=later),
                          runs.assign(value=runs["value"] * 1.25, pushed_at=later), frame[frame["build"] == older]])
    once = run(write(tmp_path, frame, "once.csv"), "--output", "json")
    twice = run(write(tmp_path, repeated, "repeated.csv"), "--output", "json")
    assert once.exit_code == 1, once.output
    assert (twice.exit_code, twice.stdout) == (once.exit_code, once.stdout)
    help_text = " ".join(CliRunner().invoke(cli, ["analyze", "--help"]).stdout.split())
    assert "Repeated rows of one build, operation and metric" in help_text and "median" in help_text


def test_a_build_not_in_the_history_is_named_with_the_builds_there(tmp_path):
    frame = history(12)
    line = bad_input(run(write(tmp_path, frame), "--build", "nope"), "build 'nope' is not in", frame["build"].iloc[-1])
    assert frame["build"].iloc[0] not in line  # the newest five only


def test_a_bad_baseline_is_named(tmp_path):
    path = write(tmp_path, history(3))
    bad_input(run(path, "--baseline", "release:["), "release:[", "not a regular expression")
    for text in ("last:0", "last:x", "last:", "last:²"):
        bad_input(run(path, "--baseline", text), f"'{text}'", "whole number >= 1")
    bad_input(run(path, "--baseline", "pinned:"), "pinned:BUILD needs the build's name")
    bad_input(run(path, "--baseline", "pinned:nope"), "pinned baseline 'nope'")
    bad_input(run(path, "--baseline", "sometimes"), "use last:N, pinned:BUILD or release[:REGEX]")


def test_a_path_that_is_not_a_history_csv_is_named(tmp_path, monkeypatch):
    bad_input(run(tmp_path), str(tmp_path), "is a folder")
    bad_input(run(tmp_path / "nope.csv"), "no such file")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad_input(run(empty), "empty file")
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 8)
    bad_input(run(junk), "not a readable CSV")
    headless = tmp_path / "headless.csv"
    history(3).to_csv(headless, index=False, header=False)
    bad_input(run(headless), "missing column(s) build", "first line")
    header_only = write(tmp_path, history(3).iloc[:0], "header_only.csv")
    bad_input(run(header_only), "no rows")
    # Tests may run as root, who reads any file: the refusal is the operating system's, simulated.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pd, "read_csv", refuse)
    bad_input(run(write(tmp_path, history(3), "locked.csv")), "locked.csv", "permission denied")


def test_a_newest_build_without_finite_values_is_named(tmp_path):
    frame = history(12)
    newest = frame["build"] == frame["build"].iloc[-1]
    infinite = frame.copy()
    infinite.loc[newest & (frame["operation"] == "me") & (frame["metric"] == "p95"), "value"] = float("inf")
    bad_input(run(write(tmp_path, infinite)), f"build '{frame['build'].iloc[-1]}'", "operation 'me'", "metric 'p95'",
              "value inf")
    empty = frame.assign(value=frame["value"].where(~newest))
    bad_input(run(write(tmp_path, empty)), f"build '{frame['build'].iloc[-1]}'", "value is empty")


def test_values_that_cannot_be_their_metric_are_named_by_line(tmp_path):
    frame = history(4)
    for metric, value in (("p50", -1.0), ("p95", -0.5), ("p99", float("-inf")), ("throughput", -22.0),
                          ("error_rate", -0.1), ("error_rate", 1.5), ("p95", float("nan"))):
        bad = frame.copy()
        row = bad.index[(bad["metric"] == metric) & (bad["operation"] == "myUser")][1]
        bad.loc[row, "value"] = value
        shown = "is empty" if value != value else f"value {value}"
        # Line 1 is the header: data row i is on line i + 2.
        bad_input(run(write(tmp_path, bad)), f"line {row + 2} ", f"build '{bad.loc[row, 'build']}'",
                  "operation 'myUser'", f"metric '{metric}'", shown)
    bad_input(run(write(tmp_path, frame.assign(pushed_at="yesterday"))), "pushed_at 'yesterday' is not a date/time")


def test_a_tolerance_that_is_not_a_percentage_is_named(tmp_path):
    path = write(tmp_path, history(3))
    for text in ("nan", "-1", "inf", "-inf", "abc"):
        bad_input(run(path, "--tolerance", text), "--tolerance", text)


def test_a_crash_is_bad_input_never_a_regression(tmp_path, monkeypatch):
    path = write(tmp_path, history(3))

    def crash(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(analyze_module, "read_csv", crash)
    line = bad_input(run(path))
    assert line == "error: internal error while analysing: ZeroDivisionError: division by zero second line"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(analyze_module, "read_csv", interrupt)
    bad_input(run(path), "interrupted")


def test_a_process_with_bad_input_prints_one_line(tmp_path):
    result = analyze(str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "is a folder" in result.stderr, result.stderr


def test_a_reader_that_closes_the_pipe_does_not_change_the_exit_code(tmp_path):
    # `ult analyze h.csv | head -1`: the verdict decides the exit code, never the closed pipe.
    flat, step = tmp_path / "flat.csv", tmp_path / "step.csv"
    history(12, cv=0.02, seed=2).to_csv(flat, index=False)
    history(12, cv=0.02, slow_op="myClasses", slow_from=10, factor=1.4).to_csv(step, index=False)
    for path, expected in ((flat, 0), (step, 1)):
        proc = subprocess.Popen([sys.executable, "-m", "ult_pipeline.cli", "analyze", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before anything is written
        assert proc.wait(timeout=120) == expected, proc.stderr.read()


def test_a_tolerance_above_the_size_that_matters_is_refused(tmp_path):
    path = tmp_path / "h.csv"
    history(12, cv=0.02).to_csv(path, index=False)
    result = analyze(str(path), "--tolerance", "50")
    assert result.returncode == 2 and "--tolerance 50 is above --matters 10" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_empty_build_or_baseline_is_refused_not_defaulted(tmp_path):
    path = write(tmp_path, history(3))
    bad_input(run(path, "--baseline", ""), "--baseline is empty")
    bad_input(run(path, "--build", " "), "--build is empty")


def test_the_release_baseline_finds_a_build_re_tagged_as_a_release(tmp_path):
    # Every build is named after `latest` (pushed as latest, re-tagged v2.3.0 later): only the history's
    # `tags` column (the images' tags now) says which one is a release.
    frame = history(8, cv=0.02, seed=4)
    pushed = list(frame.drop_duplicates("build").sort_values("pushed_at")["build"])
    frame["build"] = frame["build"].map({b: f"latest-{i:012x}" for i, b in enumerate(pushed)})
    release = "latest-000000000004"  # the fifth build pushed
    untagged = tmp_path / "untagged.csv"
    frame.to_csv(untagged, index=False)
    result = analyze(str(untagged), "--baseline", "release")
    assert result.returncode == 2 and "0 baseline build(s)" in result.stderr, result.stderr
    tagged = tmp_path / "tagged.csv"
    frame.assign(tags=frame["build"].map(lambda b: "v2.3.0 latest" if b == release else "")).to_csv(tagged, index=False)
    result = analyze(str(tagged), "--baseline", "release", "--output", "json")
    assert result.returncode in (0, 1), result.stderr
    compared = {m["builds_compared"] for m in json.loads(result.stdout)["metrics"]}
    assert compared == {5}  # the five builds up to the release
