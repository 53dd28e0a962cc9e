"""`ult demo`: sandbox + Dagster, three pushed images, one load test each, then a summary.

Images: a baseline, two rebuilds of the same speed (the second is the first build with enough
history to be judged: it must come out not regressed), and a build 30 % slower on one operation
whose own telemetry is switched off (so the regression and the telemetry gap both show).
Every build's run is started by the ECR sensor, exactly as in production.

The demo's home is its own: it marks a home it creates (`.ult-demo-home`) and at start deletes
an existing home only when that mark is there, so `--home` can never wipe someone's folder.
"""

from __future__ import annotations

import json
import shutil
import signal
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import click
import dagster as dg
import psutil

from ult_pipeline.assets.ab_confirmation import NO_REGRESSION, VERDICT_FILE
from ult_pipeline.assets.telemetry_gap import COVERS_EVERY_OPERATION, read_gaps
from ult_pipeline.build import Build
from ult_pipeline.demo import dagster_process
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline.sandbox.settings import SandboxSettings

SLOW_OPERATION = "userNode"
HOME_MARKER = ".ult-demo-home"
# The build line shows these checks' findings already (verdict, telemetry gaps).
_SHOWN_CHECKS = frozenset({NO_REGRESSION, COVERS_EVERY_OPERATION})
_REASON_CHARS = 300


@dataclass(frozen=True)
class DemoBuild:
    tag: str
    knobs: ServiceKnobs
    what: str


SLOWDOWN = 0.30
BUILDS = (
    DemoBuild("v1.0.0", ServiceKnobs(), "baseline"),
    DemoBuild("v1.0.1", ServiceKnobs(), "rebuild, same speed"),
    DemoBuild("v1.0.2", ServiceKnobs(), "rebuild, same speed"),
    # Its knobs are set once the baseline is measured: see slow_build().
    DemoBuild("v1.1.0", ServiceKnobs(), f"+30 % latency on {SLOW_OPERATION}, its telemetry off"),
)


def slow_build(build: DemoBuild, baseline_p50_ms: float | None) -> DemoBuild:
    """+30 % of what clients saw: a percentage of server time alone is a smaller share of client latency."""
    extra_ms = round(max(SLOWDOWN * (baseline_p50_ms or 3.0), 0.5), 2)
    knobs = ServiceKnobs(latency_ms={SLOW_OPERATION: extra_ms}, no_telemetry=frozenset({SLOW_OPERATION}))
    return DemoBuild(build.tag, knobs, f"{build.what} (+{extra_ms} ms on a {baseline_p50_ms or 0:.2f} ms median)")


def baseline_p50(results_dir: Path, partitions: list[str], operation: str) -> float | None:
    """The operation's median latency over the earlier builds (the median of their p50s), from the
    pipeline's history store in `results_dir` (ULT_RESULTS_DIR)."""
    history, _ = ResultsStoreResource(base_dir=str(results_dir)).history_store().load()
    if history.empty:
        return None
    rows = history[history["build"].isin(partitions) & (history["operation"] == operation)
                   & (history["metric"] == "p50")]
    values = [float(v) for v in rows["value"]]
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class DemoOptions:
    home: Path
    service_port: int
    aws_port: int
    ui_port: int
    duration: str
    dataset_profile: str
    keep_running: bool
    run_timeout_s: float
    confirm: bool = False  # re-run suspected regressions A,B,A,B (production's default; off: a shorter demo)

    @property
    def results_dir(self) -> Path:
        """The pipeline's results store (ULT_RESULTS_DIR): the history store, each build's files."""
        return self.home / "results"


def _pipeline_env(settings: SandboxSettings, status, options: DemoOptions) -> dict[str, str]:
    return {
        "ULT_SANDBOX_HOME": str(settings.home), "ULT_SANDBOX_PORT": str(settings.port),
        "ULT_SANDBOX_AWS_PORT": str(settings.aws_port), "ULT_AWS_ENDPOINT_URL": status.aws_endpoint,
        "ULT_TARGET_URL": status.url, "ULT_TARGET_API_KEY": status.api_key, "ULT_TARGET_DSN": status.dsn,
        "ULT_TARGET_ENVIRONMENT": settings.environment, "ULT_RESULTS_DIR": str(options.results_dir),
        "ULT_DATASET_PROFILE": options.dataset_profile, "ULT_LOAD_PROFILE": "default",
        "ULT_LOAD_DURATION": options.duration, "ULT_SENSOR_INTERVAL_S": "5",
        "ULT_CONFIRM_REGRESSIONS": "1" if options.confirm else "0",
        **sandbox_aws.credentials_env(),
    }


def _stop_our_k6(target_url: str) -> None:
    # k6 runs in a session of its own, so stopping Dagster's process group leaves it: find it by its target.
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != "k6":
            continue
        try:
            if proc.environ().get("ULT_TARGET_URL") == target_url:
                proc.send_signal(signal.SIGINT)
                proc.wait(10)
        except psutil.TimeoutExpired:
            proc.kill()
        except psutil.Error:
            pass


def _wait_for_run(instance: dg.DagsterInstance, partition: str, timeout_s: float) -> dg.DagsterRun | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": partition}), limit=1)
        if runs and runs[0].is_finished:
            return runs[0]
        time.sleep(2)
    return None


def _short(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= _REASON_CHARS else line[:_REASON_CHARS - 3] + "..."


def step_failure_reason(event: dg.DagsterEvent) -> str:
    """`STEP: first line of its error` for a STEP_FAILURE event.

    Dagster wraps an error raised in an op's code (DagsterExecutionStepExecutionError, "Error
    occurred while executing op ..."); the user's error is its cause, and that is the reason.
    """
    error = event.step_failure_data.error
    if error is not None and error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    return f"{event.step_key} failed: {_short(error.message) if error is not None else 'no error recorded'}"


def failed_check_reasons(evaluations: Iterable[dg.EventLogEntry], skip: frozenset[str] = frozenset()) -> list[str]:
    """`check ASSET.CHECK: description` of each failed check among ASSET_CHECK_EVALUATION records."""
    reasons = []
    for record in evaluations:
        check = record.dagster_event.asset_check_evaluation_data if record.dagster_event else None
        if check is None or check.passed or check.check_name in skip:
            continue
        reasons.append(f"check {check.asset_key.to_user_string()}.{check.check_name}: "
                       f"{_short(check.description or 'failed')}")
    return reasons


def run_problems(instance: dg.DagsterInstance, run: dg.DagsterRun, skip_checks: frozenset[str] = frozenset()
                 ) -> list[str]:
    """Why a run failed (each failed step and its error's first line, or the run's own failure
    message), then its failed asset checks other than `skip_checks`; [] for a clean run."""
    problems: list[str] = []
    if run.status == dg.DagsterRunStatus.FAILURE:
        problems = [step_failure_reason(r.dagster_event)
                    for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
                    if r.dagster_event is not None]
        if not problems:  # e.g. the run worker died: only the run's failure says why
            problems = [f"run failed: {_short(r.dagster_event.message or r.user_message)}"
                        for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
                        if r.dagster_event is not None][:1]
    checks = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return problems + failed_check_reasons(checks, skip_checks)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def build_line(build: DemoBuild, partition: str, run: dg.DagsterRun | None, instance: dg.DagsterInstance,
               seconds: float, results_dir: Path | None = None) -> str:
    """One line per build: the run's status and time, and from the files the pipeline wrote in
    `results_dir` (the history store, verdict.json, telemetry_gap.json) its totals, verdict and
    telemetry gaps; then why the run failed and its failed checks (from the run's event log)."""
    if run is None:
        return f"{build.tag:8} {partition:24} did not finish in time ({build.what})"
    k6 = verdict = gap = {}
    if results_dir is not None:
        store = ResultsStoreResource(base_dir=str(results_dir))
        folder = store.partition_dir(partition)
        k6 = store.history_store().summary(partition) or {}
        verdict = _read_json(folder / VERDICT_FILE)
        gap = read_gaps(folder) or {}
    parts = [f"{build.tag:8} {partition:24} {run.status.value:8} {seconds:4.0f} s"]
    if k6:
        p95 = k6.get("p95_ms")
        parts.append(f"{k6.get('requests') or 0} requests, p95 {float('nan') if p95 is None else p95:.1f} ms, "
                     f"errors {k6.get('error_rate') or 0:.2%}")
    if verdict:
        regressed = verdict.get("regressed_operations", "none")
        parts.append(f"verdict: {verdict.get('verdict')}" + (f" [{regressed}]" if regressed != "none" else ""))
        if verdict.get("inconclusive", "none") != "none":
            parts.append(f"inconclusive: {verdict['inconclusive']}")
        if verdict.get("confirmation", "not needed") != "not needed":
            parts.append(f"A/B: {verdict['confirmation']}")
    if gap:
        parts.append(f"telemetry gaps: {gap.get('gaps', 'none')}")
    parts += run_problems(instance, run, _SHOWN_CHECKS)
    return "  ".join(parts) + f"  ({build.what})"


class DemoHomeError(click.ClickException):
    """The demo will not use this home; the message names the folder and what to do (one line)."""


def prepare_home(home: Path, stop_sandbox: Callable[[], None]) -> None:
    """Make `home` a fresh, empty, marked demo home.

    A home this demo made (it carries HOME_MARKER) is deleted after `stop_sandbox()` stopped
    what ran in it; an empty folder is adopted; a missing one is created. Anything else --
    a file, or a folder with content and no marker -- raises DemoHomeError and is left as is.
    """
    marker = home / HOME_MARKER
    if home.exists() or home.is_symlink():
        if home.is_symlink() or not home.is_dir():
            raise DemoHomeError(f"--home {home} is not a folder: pass a new or empty folder for the demo")
        if marker.is_file() and not marker.is_symlink():
            # Every demo starts from nothing: a fresh sandbox, registry and Dagster history.
            stop_sandbox()
            shutil.rmtree(home)
        elif any(home.iterdir()):
            raise DemoHomeError(
                f"--home {home} is not empty and was not made by `ult demo` (no {HOME_MARKER} in it), so the "
                "demo will not delete it: pass a new or empty folder, or remove this one yourself")
    home.mkdir(parents=True, exist_ok=True)
    marker.write_text("Made by `ult demo`: the next demo that uses this folder deletes it and starts afresh.\n")


def run_demo(options: DemoOptions, echo: Callable[[str], None]) -> int:
    settings = SandboxSettings(home=options.home / "sandbox", port=options.service_port, external_dsn=None,
                               aws_port=options.aws_port)
    prepare_home(options.home, lambda: manager.down(settings))
    dagster_home = options.home / "dagster_home"
    results_dir = options.results_dir
    proc = status = None
    failures = 0
    try:
        # Inside the try: a stop while the sandbox starts still stops what had started.
        status = manager.up(settings)
        echo(f"sandbox: {status.url} (AWS {status.aws_endpoint})")
        dagster_process.write_local_instance_yaml(dagster_home)
        proc = dagster_process.start(dagster_home, options.ui_port, _pipeline_env(settings, status, options),
                                     options.home / "dagster.log")
        ui = f"http://127.0.0.1:{options.ui_port}"
        echo(f"Dagster UI: {ui}")
        lines = []
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            earlier: list[str] = []
            for build in BUILDS:
                if build is BUILDS[-1]:
                    build = slow_build(build, baseline_p50(results_dir, earlier, SLOW_OPERATION))
                pushed = sandbox_aws.push(settings.aws_port, build.tag, build.knobs)
                partition = Build.of(build.tag, pushed["digest"]).key
                earlier.append(partition)
                echo(f"pushed {build.tag} ({build.what}); waiting for the sensor's run of {partition}")
                started = time.monotonic()
                run = _wait_for_run(instance, partition, options.run_timeout_s)
                line = build_line(build, partition, run, instance, time.monotonic() - started, results_dir)
                failures += run is None or run.status != dg.DagsterRunStatus.SUCCESS
                lines.append(line)
                echo(line)
        echo("")
        echo(f"summary ({len(lines)} builds) -- UI: {ui}/assets  runs: {ui}/runs")
        for line in lines:
            echo("  " + line)
        if options.keep_running:
            echo("running until Ctrl-C")
            while proc.poll() is None:
                time.sleep(1)
    finally:
        if proc is not None:
            dagster_process.stop(proc)
        if status is not None:
            _stop_our_k6(status.url)
        manager.down(settings)
        echo("stopped the sandbox and Dagster")
    return 1 if failures else 0

