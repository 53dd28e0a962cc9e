"""Every stop keeps what it had: `ult run` stopped by SIGTERM, SIGHUP or SIGINT (also when started with
SIGINT ignored) stops k6, keeps the partial results and exits 128 + the signal; k6 sees only the
environment it needs; an interrupted run's rate is over the time it ran."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import run_load_test
from ult_pipeline.loadtest.runner import K6RunResult, k6_environment
from ult_pipeline_tests.loadtest.k6_csv import write_k6_csv

OPS = ["me", "myUser", "memberships", "orgMemberships", "myUsers", "userNode", "myClasses", "permissions"]
# Secrets a parent process may hold; none may reach k6.
CANARIES = {
    "NEW_RELIC_LICENSE_KEY": "canary-nr-license-0123456789",
    "NEW_RELIC_API_KEY": "canary-nr-user-key",
    "DAGSTER_PG_PASSWORD": "canary-dagster-pg-password",
    "ULT_TARGET_API_KEY": "canary-target-api-key",
    "OTEL_EXPORTER_OTLP_HEADERS": "api-key=canary-otlp-header",
    "K6_OTEL_HEADERS": "api-key=canary-k6-otel-header",
    "K6_CLOUD_TOKEN": "canary-k6-cloud-token",
    "AWS_SECRET_ACCESS_KEY": "canary-aws-secret",
}
CANARY_DSN = "postgresql://loadtest:canary-dsn-password@127.0.0.1:5432/postgres"


def _environment(parent: dict[str, str], **kwargs) -> dict[str, str]:
    return k6_environment(
        parent, target_url="http://127.0.0.1:9/user/", identities_path=Path("/tmp/identities.json"),
        cwd=Path("/srv/k6"), profile_env=get_load_profile("short").k6_env(), **kwargs,
    )


def test_k6_gets_what_it_needs_and_no_secret_of_the_parent():
    parent = {
        **CANARIES, "ULT_TARGET_DSN": CANARY_DSN, "PATH": "/usr/bin:/bin", "HOME": "/home/loadtest",
        "TMPDIR": "/var/tmp", "LANG": "C.UTF-8", "TZ": "UTC", "ULT_BUILD": "v9", "ULT_RESULTS_DIR": "/results",
        "K6_NO_USAGE_REPORT": "true", "PWD": "/home/loadtest/elsewhere", "PYTHONPATH": "/opt/app",
    }
    env = _environment(parent, extra_env={"ULT_DURATION": "7s"})
    for name, value in [*CANARIES.items(), ("ULT_TARGET_DSN", CANARY_DSN)]:
        assert name not in env
        assert not any(value in v for v in env.values()), name
    assert "canary" not in json.dumps(env)
    # What running needs, and what the suite reads.
    assert {k: env[k] for k in ("PATH", "HOME", "TMPDIR", "LANG", "TZ")} == {
        "PATH": "/usr/bin:/bin", "HOME": "/home/loadtest", "TMPDIR": "/var/tmp", "LANG": "C.UTF-8", "TZ": "UTC"}
    assert env["ULT_TARGET_URL"] == "http://127.0.0.1:9/user/" and env["ULT_IDENTITIES"] == "/tmp/identities.json"
    assert env["ULT_BUILD"] == "v9" and env["ULT_DURATION"] == "7s" and env["ULT_RATE"] == "5"
    assert env["K6_NO_USAGE_REPORT"] == "true" and env["K6_CSV_TIME_FORMAT"] == "unix_milli"
    assert env["PWD"] == "/srv/k6"  # where k6 runs, not the parent's directory
    assert "ULT_RESULTS_DIR" not in env and "PYTHONPATH" not in env


def test_the_otlp_settings_and_key_reach_k6_only_when_its_output_is_on():
    otlp = {"K6_OTEL_HEADERS": "api-key=meant-for-k6", "K6_OTEL_HTTP_EXPORTER_ENDPOINT": "127.0.0.1:4318"}
    assert _environment(CANARIES, otlp_env=otlp)["K6_OTEL_HEADERS"] == "api-key=meant-for-k6"
    assert "K6_OTEL_HEADERS" not in _environment(CANARIES)


def test_a_relative_identities_path_reaches_k6_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = k6_environment({}, target_url="http://127.0.0.1:9/user/", identities_path=Path("run/identities.json"),
                         cwd=Path("/srv/k6"), profile_env={})
    assert env["ULT_IDENTITIES"] == str(tmp_path / "run" / "identities.json")


class _StoppedRunner:
    """Stands in for K6Runner: 10 s of samples written, then stopped as by a signal."""

    def __init__(self, samples: Path, summary: dict | None = None):
        self.samples = samples
        self.summary = summary or {}

    def run(self, *, out_dir, on_interrupt, **_kwargs) -> K6RunResult:
        out_dir.mkdir(parents=True, exist_ok=True)
        samples = out_dir / "samples.csv.gz"
        samples.write_bytes(self.samples.read_bytes())
        # k6's own run time includes its start and stop, so it is longer than the load's 10 s.
        on_interrupt(K6RunResult(exit_code=105, interrupted=True, thresholds_crossed=False, seconds=14.0,
                                 samples_path=samples, summary_path=out_dir / "summary.json", summary=self.summary))
        raise KeyboardInterrupt


def _stopped_run(tmp_path, summary: dict | None = None):
    # 100 iterations (800 requests at 80/s): 10 s of a planned 10 minutes.
    write_k6_csv(tmp_path / "samples.csv.gz", 800, OPS, rate_per_s=80.0)
    kept, lines = [], []
    with pytest.raises(KeyboardInterrupt):
        run_load_test(
            runner=_StoppedRunner(tmp_path / "samples.csv.gz", summary), target_url="http://127.0.0.1:9/user/",
            identities_path=tmp_path / "identities.json", profile=get_load_profile("default").with_overrides(rate=10),
            out_dir=tmp_path / "k6", dataset_hash="sha256:test", log=lines.append, on_interrupt=kept.append,
        )
    (partial,) = kept
    return partial, lines


def test_an_interrupted_runs_rate_is_over_the_time_k6_says_it_ran(tmp_path):
    # k6's summary: 100 iterations at 8/s, so 12.5 s of load.
    partial, _ = _stopped_run(tmp_path, {"metrics": {"iterations": {"count": 100, "rate": 8.0}}})
    assert partial.seconds == pytest.approx(12.5) and partial.achieved_rate == pytest.approx(8.0)
    assert json.loads((tmp_path / "k6" / "result.json").read_text())["achieved_rate"] == pytest.approx(8.0)


def test_without_k6s_summary_an_interrupted_runs_rate_is_over_its_samples_span(tmp_path):
    # No summary (k6 killed before writing it): the request samples' span, 10 s.
    partial, lines = _stopped_run(tmp_path)
    assert partial.interrupted and partial.ingested.iterations == 100
    span_s = (partial.ingested.last_ms - partial.ingested.first_ms) / 1000
    assert span_s == pytest.approx(799 / 80, abs=0.01)
    assert partial.seconds == span_s  # first to last sample, not k6's 14 s nor the planned 600 s
    assert partial.achieved_rate == pytest.approx(100 / span_s, rel=1e-9)  # ~10, not 100/600
    stored = json.loads((tmp_path / "k6" / "result.json").read_text())
    assert stored["interrupted"] is True and stored["achieved_rate"] == pytest.approx(partial.achieved_rate)
    assert stored["seconds"] == pytest.approx(partial.seconds)
    assert any(f"partial results in {tmp_path / 'k6'}" in line for line in lines), lines


def test_a_complete_runs_rate_is_over_the_planned_duration(tmp_path):
    from ult_pipeline_tests.loadtest.test_ingest import _ReplayRunner  # a runner that completes

    write_k6_csv(tmp_path / "samples.csv.gz", 800, OPS, rate_per_s=80.0)
    result = run_load_test(
        runner=_ReplayRunner(tmp_path / "samples.csv.gz"), target_url="http://127.0.0.1:9/user/",
        identities_path=tmp_path / "identities.json", profile=get_load_profile("short").with_overrides(duration="20s"),
        out_dir=tmp_path / "k6", dataset_hash="sha256:test",
    )
    assert not result.interrupted and result.seconds == 20 and result.achieved_rate == pytest.approx(100 / 20)


def test_the_iteration_k6_may_start_at_the_very_end_is_not_load_above_the_target(tmp_path):
    from ult_pipeline_tests.loadtest.test_ingest import _ReplayRunner

    # 101 iterations where rate x duration plans 100 (5/s for 20 s): k6 started one more at the end.
    write_k6_csv(tmp_path / "samples.csv.gz", 808, OPS, rate_per_s=80.0)
    result = run_load_test(
        runner=_ReplayRunner(tmp_path / "samples.csv.gz"), target_url="http://127.0.0.1:9/user/",
        identities_path=tmp_path / "identities.json",
        profile=get_load_profile("short").with_overrides(rate=5, duration="20s"),
        out_dir=tmp_path / "k6", dataset_hash="sha256:test",
    )
    assert result.ingested.iterations == 101 and result.achieved_rate == pytest.approx(5.0)


# --- `ult run` stopped by a signal, against the session's sandbox ---------------------------------------------

PLANNED_S = 120  # far longer than the test waits: the run can only end by the signal


def _k6_children(pid: int) -> list[psutil.Process]:
    """The k6 processes running the test under `pid`: `k6 run ... --address ...`.

    Short-lived `k6 version` calls (and zombies, whose command line reads empty) are not it.
    """
    found = []
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    for proc in children:
        try:
            if proc.name() == "k6" and "--address" in proc.cmdline():
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _k6_against(url: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "k6" and proc.status() != psutil.STATUS_ZOMBIE \
                    and proc.environ().get("ULT_TARGET_URL") == url:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _k6_requests(k6: psutil.Process) -> int:
    """Requests k6 has sent so far, from its REST API (its --address)."""
    try:
        cmdline = k6.cmdline()
        address = cmdline[cmdline.index("--address") + 1]
    except (psutil.Error, ValueError, IndexError):
        return 0  # gone or not the test's k6: counted as nothing sent yet
    try:
        data = requests.get(f"http://{address}/v1/metrics", timeout=2).json()["data"]
    except (requests.RequestException, ValueError, KeyError):
        return 0
    return next((int(m["attributes"]["sample"].get("count", 0)) for m in data if m["id"] == "http_reqs"), 0)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code", "ignore_sigint"), [
    (signal.SIGTERM, 143, False), (signal.SIGHUP, 129, False), (signal.SIGINT, 130, True),
], ids=["SIGTERM", "SIGHUP", "SIGINT-started-ignored"])
def test_ult_run_stopped_by_a_signal_stops_k6_and_keeps_the_partial_results(
        sandbox, sandbox_settings, tmp_path, signum, code, ignore_sigint):
    results = tmp_path / "results"
    env = {
        **os.environ, **CANARIES, "ULT_TARGET_DSN": sandbox.dsn, "ULT_SANDBOX_HOME": str(sandbox_settings.home),
        "ULT_SANDBOX_PORT": str(sandbox_settings.port), "ULT_RESULTS_DIR": str(results),
    }
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        ult = subprocess.Popen(
            [sys.executable, "-m", "ult_pipeline.cli", "run", "--profile", "tiny", "--load", "short",
             "--duration", f"{PLANNED_S}s", "--rate", "5"],
            env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            # As `ult run &` from a script starts it: SIGINT ignored, which the handler must override.
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
        )

    def output() -> str:
        return f"exit {ult.poll()}\nstdout:\n{out_path.read_text()}\nstderr:\n{err_path.read_text()}"

    k6 = None
    try:
        # Signal only once k6 is really loading the target.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and ult.poll() is None:
            children = _k6_children(ult.pid)
            if children and _k6_requests(children[0]) >= 10:
                k6 = children[0]
                break
            time.sleep(0.2)
        assert k6 is not None, "k6 never sent 10 requests\n" + output()
        k6_env = k6.environ()
        assert k6_env["ULT_TARGET_URL"] == sandbox.url
        for name, value in [*CANARIES.items(), ("ULT_TARGET_DSN", sandbox.dsn)]:
            assert name not in k6_env and not any(value in v for v in k6_env.values()), name

        ult.send_signal(signum)
        assert ult.wait(120) == code, output()
    finally:
        if ult.poll() is None:
            ult.kill()
            ult.wait(30)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (k6.is_running() and k6.status() != psutil.STATUS_ZOMBIE
                                           or _k6_against(sandbox.url)):
        time.sleep(0.1)
    try:
        k6_left = k6.is_running() and k6.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        k6_left = False
    assert not k6_left and not _k6_against(sandbox.url), "k6 still loads the sandbox\n" + output()

    (run_dir,) = (results / "runs").iterdir()
    k6_dir = run_dir / "k6"
    for name in ("requests.parquet", "operations.parquet", "timeseries.parquet", "summary.json"):
        assert (k6_dir / name).is_file(), name + "\n" + output()
    result = json.loads((k6_dir / "result.json").read_text())
    assert result["interrupted"] is True
    assert result["totals"]["requests"] >= 10
    # The rate is over the time run (k6's own measure; well under the planned duration), not the plan.
    summary = json.loads((k6_dir / "summary.json").read_text())["metrics"]["iterations"]
    assert 0 < result["seconds"] < PLANNED_S
    assert result["seconds"] == pytest.approx(summary["count"] / summary["rate"])
    iterations = result["totals"]["iterations"]
    assert iterations > 0 and result["achieved_rate"] == pytest.approx(iterations / result["seconds"])
    printed = out_path.read_text()
    assert f"interrupted; partial results in {k6_dir}" in printed, output()
    assert f"stopped by {signal.Signals(signum).name}" in err_path.read_text(), output()
