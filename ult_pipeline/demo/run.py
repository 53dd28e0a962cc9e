"""`ult demo`: sandbox + Dagster, four pushed images, one load test each, then a summary.

Images: a baseline, two rebuilds of the same speed (the second is the first build with enough
history to be judged: it must come out not regressed), and a build 30 % slower on one operation
whose own telemetry is switched off (so the regression and the telemetry gap both show).
Every build's run is started by the ECR sensor, exactly as in production.

The summary has a line per build (status, verdict, the smallest change the run could have seen,
or why it failed) and a closing line saying whether the demo showed its story (`story`): the slowed
build regressed on its operation and the same-speed rebuild did not. The results folder is served
over HTTP on the loopback (`ReportServer`), so the UI links to the trend report in one click.

With `--writes` each build also runs the write tests (ULT_WRITE_TESTS=all: `write_results` and
`write_verdict`, `roster_contention`), and the second same-speed rebuild (LOSSY) is pushed with the
sandbox's 4.5.0 roster-write race (`roster_writes="unlocked"`): its line says `no_lost_writes FAILED`
with the counts, the other builds' lines `passed`, and the closing line names it.

The demo's home is its own: it marks a home it creates (`.ult-demo-home`) and at start deletes
an existing home only when that mark is there, so `--home` can never wipe someone's folder.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import dagster as dg
import psutil
import requests

from ult_pipeline.analysis.history import ALL_OPERATIONS
from ult_pipeline.assets.ab_confirmation import NO_REGRESSION, VERDICT_FILE
from ult_pipeline.assets.run_config_check import run_config_problems
from ult_pipeline.assets.telemetry_gap import COVERS_EVERY_OPERATION, read_gaps
from ult_pipeline.assets.write_tests import (
    NO_LOST_WRITES,
    NO_WRITE_REGRESSION,
    ROSTER_CONTENTION,
    WRITE_VERDICT_FILE,
    WRITES_FOLDER,
)
from ult_pipeline.build import Build
from ult_pipeline.demo import dagster_process
from ult_pipeline.loadtest.contention import load_contention
from ult_pipeline.processes import stop_group
from ult_pipeline.resources.target import CONTENTION_HISTORY_FOLDER, WRITES_HISTORY_FOLDER, ResultsStoreResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline.sandbox.settings import SandboxSettings

# Why a run failed, read from its event log: one reading for the demo's lines and the skipped-checks sensor.
from ult_pipeline.sensors.run_failures import run_problems
from ult_pipeline.settings import PipelineSettings

SLOW_OPERATION = "userNode"
HOME_MARKER = ".ult-demo-home"
# The build line shows these checks' findings already (verdict, telemetry gaps, the write tests' part).
_SHOWN_CHECKS = frozenset({NO_REGRESSION, COVERS_EVERY_OPERATION, NO_WRITE_REGRESSION, NO_LOST_WRITES})


@dataclass(frozen=True)
class DemoBuild:
    tag: str
    knobs: ServiceKnobs
    what: str


SLOWDOWN = 0.30
# The story the demo tells: the slowed build regresses on SLOW_OPERATION, the same-speed rebuild
# (the first build with enough history to be judged) does not.
SLOWED, REBUILD = "v1.1.0", "v1.0.2"
BUILDS = (
    DemoBuild("v1.0.0", ServiceKnobs(), "baseline"),
    DemoBuild("v1.0.1", ServiceKnobs(), "rebuild, same speed"),
    DemoBuild("v1.0.2", ServiceKnobs(), "rebuild, same speed"),
    # Its knobs are set once the baseline is measured: see slow_build().
    DemoBuild("v1.1.0", ServiceKnobs(), f"+30 % latency on {SLOW_OPERATION}, its telemetry off"),
)
# With --writes: this same-speed rebuild loses parallel roster writes, as the real service 4.5.0 does.
LOSSY = "v1.0.2"
LOSSY_WHAT = "rebuild, same speed, loses parallel roster writes (roster writes unlocked, as 4.5.0)"


def demo_builds(writes: bool) -> tuple[DemoBuild, ...]:
    """The builds the demo pushes: BUILDS, and with `writes` LOSSY pushed with the lost-writes knob."""
    if not writes:
        return BUILDS
    return tuple(DemoBuild(b.tag, ServiceKnobs(roster_writes="unlocked"), LOSSY_WHAT) if b.tag == LOSSY else b
                 for b in BUILDS)


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
    report_port: int = 18380  # the results folder served over HTTP (links from the UI to reports)
    writes: bool = False  # the write tests on every build, LOSSY losing roster writes (a longer demo)

    @property
    def results_dir(self) -> Path:
        """The pipeline's results store (ULT_RESULTS_DIR): the history store, each build's files."""
        return self.home / "results"

    @property
    def results_url(self) -> str:
        """Where `results_dir` is served (ULT_RESULTS_URL), e.g. http://127.0.0.1:18380."""
        return f"http://127.0.0.1:{self.report_port}"

    @property
    def trend_report_url(self) -> str:
        """The trend report (`trend_report` writes <results>/trend/trend_report.html)."""
        return f"{self.results_url}/trend/trend_report.html"


def _pipeline_env(settings: SandboxSettings, status, options: DemoOptions) -> dict[str, str]:
    return {
        "ULT_SANDBOX_HOME": str(settings.home), "ULT_SANDBOX_PORT": str(settings.port),
        "ULT_SANDBOX_AWS_PORT": str(settings.aws_port), "ULT_AWS_ENDPOINT_URL": status.aws_endpoint,
        "ULT_TARGET_URL": status.url, "ULT_TARGET_API_KEY": status.api_key, "ULT_TARGET_DSN": status.dsn,
        "ULT_TARGET_ENVIRONMENT": settings.environment, "ULT_RESULTS_DIR": str(options.results_dir),
        "ULT_RESULTS_URL": options.results_url,
        "ULT_DATASET_PROFILE": options.dataset_profile, "ULT_LOAD_PROFILE": "default",
        "ULT_LOAD_DURATION": options.duration, "ULT_SENSOR_INTERVAL_S": "1",
        "ULT_CONFIRM_REGRESSIONS": "1" if options.confirm else "0",
        # Off: the read test alone (ULT_WRITE_TESTS unset would do too, but a user's own setting must not leak in).
        "ULT_WRITE_TESTS": "all" if options.writes else "none",
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


def failure_reason(run: dg.DagsterRun | None, instance: dg.DagsterInstance, timeout_s: float | None = None
                   ) -> str | None:
    """Why the build's run did not succeed, never empty; None for a successful run."""
    if run is None:
        return "its run did not finish in time" + (f" (--run-timeout {timeout_s:.0f} s)" if timeout_s else "")
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return None
    if run.status == dg.DagsterRunStatus.CANCELED:
        return "its run was canceled (a stop, or a newer image's run replaced it)"
    return "; ".join(run_problems(instance, run, _SHOWN_CHECKS)) or (
        f"run {run.run_id[:8]} ended {run.status.value} with no failed step or check in its event log: see dagster.log")


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_verdict(results_dir: Path, partition: str) -> dict:
    """The build's verdict.json (written by ab_confirmation) from the results store, {} when there is none."""
    return _read_json(ResultsStoreResource(base_dir=str(results_dir)).partition_dir(partition) / VERDICT_FILE)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _operations(verdict: dict) -> list[dict]:
    """verdict.json's per-operation rows, without the all-operations row."""
    return [row for row in verdict.get("operations") or []
            if isinstance(row, dict) and row.get("operation") != ALL_OPERATIONS]


def _row(verdict: dict, operation: str) -> dict:
    return next((row for row in _operations(verdict) if row.get("operation") == operation), {})


def smallest_change(verdict: dict, operation: str = SLOW_OPERATION) -> str | None:
    """The smallest change the build's run could have seen, from verdict.json's `mdc_pct` (%) per operation:
    `could see changes above 4 % on userNode (median 5 %, max 7 % over 8 operations)`.
    None when no operation has one (e.g. insufficient history)."""
    values = [v for v in (_number(row.get("mdc_pct")) for row in _operations(verdict)) if v is not None]
    if not values:
        return None
    spread = f"median {statistics.median(values):.0f} %, max {max(values):.0f} % over {len(values)} operations"
    own = _number(_row(verdict, operation).get("mdc_pct"))
    if own is None:
        return f"could see changes above {statistics.median(values):.0f} % ({spread})"
    return f"could see changes above {own:.0f} % on {operation} ({spread})"


def _regressed(verdict: dict) -> list[str]:
    named = str(verdict.get("regressed_operations") or "none")
    return [] if named == "none" else [op.strip() for op in named.split(",") if op.strip()]


def writes_story(contention: dict[str, dict], failures: dict[str, str]) -> tuple[str | None, list[str]]:
    """The lost-writes part of the closing line: (what was shown or None, why not).

    contention: build tag -> its roster-contention summary (`acknowledged`, `lost`; {} or absent when the
    test did not run). Shown when LOSSY lost acknowledged writes and no other build lost any."""
    why: list[str] = []
    lossy = contention.get(LOSSY) or {}
    lost, acknowledged = _count(lossy.get("lost")), _count(lossy.get("acknowledged"))
    if not lossy:
        if LOSSY not in failures:  # a failed LOSSY is said once, by the read story
            why.append(f"{LOSSY} has no roster-contention result")
    elif not lost:
        why.append(f"{LOSSY} (roster writes unlocked) lost none of its {acknowledged} acknowledged roster writes: "
                   "the race did not happen this time")
    others = {tag: summary for tag, summary in contention.items() if tag != LOSSY and summary}
    for tag, summary in others.items():
        if _count(summary.get("lost")):
            why.append(f"{tag} lost {_count(summary.get('lost'))} of {_count(summary.get('acknowledged'))} "
                       "acknowledged roster writes with its roster writes locked")
    if not lossy or not lost:
        return None, why
    rest = ("" if not others or why else "; the other build lost none" if len(others) == 1
            else f"; the other {len(others)} builds lost none")
    return (f"{LOSSY} (roster writes unlocked) lost {lost} of {acknowledged} acknowledged roster writes "
            f"(no_lost_writes failed){rest}"), why


def _count(value) -> int:
    number = _number(value)
    return int(number) if number is not None else 0


def story(verdicts: dict[str, dict], failures: dict[str, str], operation: str = SLOW_OPERATION,
          planted_pct: float = SLOWDOWN * 100, contention: dict[str, dict] | None = None) -> str:
    """The closing line: did the demo show what it is meant to show, and if not, why.

    verdicts: build tag -> its verdict.json ({} or absent when none was written); failures: build
    tag -> why its run did not succeed (absent for a successful run). Shown when the slowed build
    (SLOWED) regressed on `operation` and the same-speed rebuild (REBUILD) did not. Starts with
    "story shown:" or "story not shown:". With `contention` (the demo's --writes: build tag -> its
    roster-contention summary) the line also says whether LOSSY lost roster writes and the others none
    (`writes_story`), and the story is shown only when both parts are.
    """
    slowed, rebuild = verdicts.get(SLOWED) or {}, verdicts.get(REBUILD) or {}
    why: list[str] = []
    if SLOWED in failures:
        why.append(f"{SLOWED} failed: {failures[SLOWED]}")
    elif not slowed:
        why.append(f"{SLOWED} has no verdict")
    elif operation not in _regressed(slowed):
        mdc = _number(_row(slowed, operation).get("mdc_pct"))
        if mdc is not None and mdc > planted_pct:
            why.append(f"noise too high on this machine: {SLOWED} could only see changes above {mdc:.0f} % on "
                       f"{operation}, the planted step is +{planted_pct:.0f} % (a longer --duration lowers that)")
        elif "cleared" in str(_row(slowed, operation).get("verdict", "")) or "cleared" in str(
                slowed.get("confirmation", "")):
            why.append(f"{SLOWED}'s {operation} was cleared by the A/B re-runs ({slowed.get('confirmation')})")
        else:
            seen = f" though it could see changes above {mdc:.0f} %" if mdc is not None else ""
            why.append(f"{SLOWED} came out {slowed.get('verdict')} on {operation}{seen}")
    if REBUILD in failures:
        why.append(f"{REBUILD} failed: {failures[REBUILD]}")
    elif not rebuild:
        why.append(f"{REBUILD} has no verdict")
    elif str(rebuild.get("verdict", "")).startswith("regressed"):
        why.append(f"{REBUILD}, a rebuild of the same speed, came out {rebuild.get('verdict')} "
                   f"[{', '.join(_regressed(rebuild))}]: a false alarm from this machine's noise")
    writes_shown = None
    if contention is not None:
        writes_shown, writes_why = writes_story(contention, failures)
        why += writes_why
    if why:
        return "story not shown: " + "; ".join(why) + (f"; the lost writes were shown: {writes_shown}"
                                                        if writes_shown else "")
    change = _number(_row(slowed, operation).get("p50_change_pct"))
    mdc = _number(_row(slowed, operation).get("mdc_pct"))
    measured = ", ".join(part for part in (f"p50 {change:+.0f} %" if change is not None else "",
                                           f"could see changes above {mdc:.0f} %" if mdc is not None else "") if part)
    others = [op for op in _regressed(slowed) if op != operation]
    verdict = str(slowed.get("verdict") or "regressed")  # e.g. "regressed (suspected)"
    return (f"story shown: {SLOWED} {verdict if verdict.startswith('regressed') else 'regressed'} on {operation}"
            + (f" ({measured})" if measured else "") + (f", and on {', '.join(others)}" if others else "")
            + f"; {REBUILD}, a rebuild of the same speed, did not ({rebuild.get('verdict')})"
            + (f"; {writes_shown}" if writes_shown else ""))


# A class's id on a build line: its first 8 hex digits say which class, the whole id is in the check.
CLASS_ID_CHARS = 8


def lost_writes_detail(folder: Path) -> str | None:
    """The classes that lost writes in the roster-contention run of the build whose results `folder` holds
    (`class 05a81013: 5 of 10, ...`), from that run's `contention.json`; None when there is none or no
    class lost a write."""
    try:
        result = load_contention(folder / WRITES_FOLDER / ROSTER_CONTENTION / "k6")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result.lossy_classes_text(CLASS_ID_CHARS) or None


def writes_part(write_verdict: dict, writes: dict | None, contention: dict | None,
                lost_detail: str | None = None) -> str | None:
    """The write tests' outcome on a build line, from the pipeline's files: `writes: <write verdict>[,
    N rows written]; no_lost_writes passed (M acknowledged roster writes, none lost)` or `... no_lost_writes
    FAILED: 17 of 40 acknowledged roster writes lost (class ...)`. None when no write test ran.

    write_verdict: the build's writes/write_verdict.json; writes, contention: its summaries in the write
    and roster-contention histories; lost_detail: the classes `no_lost_writes` named."""
    if not (write_verdict or writes or contention):
        return None
    if write_verdict:
        regressed = str(write_verdict.get("regressed_operations") or "none")
        said = f"writes: {write_verdict.get('verdict')}" + (f" [{regressed}]" if regressed != "none" else "")
    else:
        said = "writes: no write verdict"
    rows = _number((writes or {}).get("rows_written"))
    if rows is not None:
        said += f", {rows:.0f} rows written"
    if not contention:
        return said + f"; {NO_LOST_WRITES} not run"
    lost, acknowledged = _count(contention.get("lost")), _count(contention.get("acknowledged"))
    if lost:
        return (said + f"; {NO_LOST_WRITES} FAILED: {lost} of {acknowledged} acknowledged roster writes lost"
                + (f" ({lost_detail})" if lost_detail else ""))
    return said + f"; {NO_LOST_WRITES} passed ({acknowledged} acknowledged roster writes, none lost)"


def read_contention(results_dir: Path, partition: str) -> dict:
    """The build's summary in the roster-contention history ({} when the test did not run)."""
    return ResultsStoreResource(base_dir=str(results_dir)).history_store(CONTENTION_HISTORY_FOLDER).summary(
        partition) or {}


def build_line(build: DemoBuild, partition: str, run: dg.DagsterRun | None, instance: dg.DagsterInstance,
               seconds: float, results_dir: Path | None = None) -> str:
    """One line per build: the run's status and time, why it failed (failed step or check and its
    first error line, from the run's event log); from the files the pipeline wrote in `results_dir`
    (verdict.json, telemetry_gap.json, the history store) its verdict, the smallest change it could
    have seen, telemetry gaps and totals; the write tests' outcome when they ran (`writes_part`); then
    failed checks of a successful run."""
    if run is None:
        return f"{build.tag:8} {partition:24} did not finish in time ({build.what})"
    k6 = verdict = gap = {}
    writes = None
    if results_dir is not None:
        store = ResultsStoreResource(base_dir=str(results_dir))
        folder = store.partition_dir(partition)
        k6 = store.history_store().summary(partition) or {}
        verdict = _read_json(folder / VERDICT_FILE)
        gap = read_gaps(folder) or {}
        contention = read_contention(results_dir, partition)
        writes = writes_part(_read_json(folder / WRITES_FOLDER / WRITE_VERDICT_FILE),
                             store.history_store(WRITES_HISTORY_FOLDER).summary(partition), contention,
                             lost_writes_detail(folder) if _count(contention.get("lost")) else None)
    parts = [f"{build.tag:8} {partition:24} {run.status.value:8} {seconds:4.0f} s"]
    reason = failure_reason(run, instance)
    if reason is not None:  # the reason first: it is what a reader of a failed build looks for
        parts.append(f"why: {reason}")
    if verdict:
        regressed = verdict.get("regressed_operations", "none")
        parts.append(f"verdict: {verdict.get('verdict')}" + (f" [{regressed}]" if regressed != "none" else ""))
        seen = smallest_change(verdict)
        if seen:
            parts.append(seen)
        inconclusive = [str(row.get("operation")) for row in _operations(verdict) if row.get("verdict") == "inconclusive"]
        if inconclusive:
            parts.append("inconclusive: " + (f"all {len(inconclusive)} operations"
                                             if len(inconclusive) == len(_operations(verdict)) > 1
                                             else ", ".join(inconclusive)))
        if verdict.get("confirmation", "not needed") != "not needed":
            parts.append(f"A/B: {verdict['confirmation']}")
    if gap:
        parts.append(f"telemetry gaps: {gap.get('gaps', 'none')}")
    if k6:
        p95 = k6.get("p95_ms")
        parts.append(f"{k6.get('requests') or 0} requests, p95 {float('nan') if p95 is None else p95:.1f} ms, "
                     f"errors {k6.get('error_rate') or 0:.2%}")
    if writes:
        parts.append(writes)
    if reason is None:  # a successful run's failed non-blocking checks
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


class DemoPortError(click.ClickException):
    """A port the demo needs is taken; the message names the option to change (one line)."""


def check_ports_free(ports: dict[str, int]) -> None:
    """Raises DemoPortError for the first of `ports` (option name -> port) taken on 127.0.0.1."""
    for option, port in ports.items():
        with socket.socket() as probe:
            # As the servers bind (SO_REUSEADDR): a closed connection's TIME_WAIT does not count as taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise DemoPortError(f"port {port} ({option}) is taken on 127.0.0.1 (another `ult demo` still "
                                    f"running?): stop what uses it or pass another {option}") from None


class ReportServer:
    """The results folder's reports served read-only over HTTP on 127.0.0.1 (`report_server`, in a
    session of its own), so the UI's links to reports (ULT_RESULTS_URL) open in one click. Only report
    files are served: never a build's identities (tokens)."""

    def __init__(self, folder: Path, port: int, log_path: Path):
        self.folder, self.port, self.log_path = folder, port, log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # The folder is on the command line: `ult demo`'s leftover cleanup finds the server by the home.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ult_pipeline.demo.report_server", "--directory", str(self.folder),
                 "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoPortError(f"the report server on port {self.port} exited with code "
                                    f"{self.proc.returncode}; see {self.log_path}")
            try:
                requests.get(self.url + "/", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise DemoPortError(f"the report server did not answer on port {self.port} within {timeout_s:.0f} s; "
                            f"see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGTERM, 5)


class DemoOptionError(click.ClickException):
    """An option the pipeline would refuse at every sensor tick: said at once, in one line, before anything starts."""


def check_options(options: DemoOptions) -> None:
    """The run config the sensor will request with these options (dataset profile, duration) is valid,
    and the four ports differ; else DemoOptionError (a typo would otherwise skip every tick until
    --run-timeout)."""
    env = {"ULT_DATASET_PROFILE": options.dataset_profile, "ULT_LOAD_PROFILE": "default",
           "ULT_LOAD_DURATION": options.duration, "ULT_WRITE_TESTS": "all" if options.writes else "none"}
    try:
        problems = run_config_problems(PipelineSettings.from_env(env).run_config())
    except ValueError as err:
        problems = [str(err)]
    if problems:
        said = "; ".join(problems).replace("ULT_LOAD_DURATION", "--duration").replace("ULT_DATASET_PROFILE",
                                                                                       "--profile")
        raise DemoOptionError(f"--duration {options.duration} --profile {options.dataset_profile}: the pipeline "
                              f"would refuse every build ({said}); fix the option")
    ports = {"--ui-port": options.ui_port, "--report-port": options.report_port,
             "--service-port": options.service_port, "--aws-port": options.aws_port}
    if len(set(ports.values())) < len(ports):
        raise DemoOptionError(f"two of {', '.join(f'{k} {v}' for k, v in ports.items())} are the same port: "
                              "give each its own")


def wait_for_trend_report(instance: dg.DagsterInstance, after: float, timeout_s: float = 180) -> bool:
    """Waits until a trend report run created after `after` (unix time: the last build's run ended) has
    finished, so the report covers every build; False when none finished in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = instance.get_run_records(filters=dg.RunsFilter(job_name="trend_report_job"), limit=5)
        if any(r.create_timestamp.timestamp() >= after and r.dagster_run.is_finished for r in records):
            return True
        time.sleep(1)
    return False


def stop_stack(proc, status, settings: SandboxSettings, server: ReportServer) -> None:
    """Stops what a demo (or the build-loop bench) started, whichever parts started: Dagster, our k6
    (in a session of its own, so Dagster's stop leaves it), the sandbox and the report server."""
    if proc is not None:
        dagster_process.stop(proc)
    if status is not None:
        _stop_our_k6(status.url)
    manager.down(settings)
    server.stop()


def run_demo(options: DemoOptions, echo: Callable[[str], None]) -> int:
    """The whole demo; returns the exit code (1 when a build's run did not succeed)."""
    # Before anything starts or is deleted. The service's and moto's ports are checked by the sandbox
    # once this home's old sandbox is stopped (it may hold them).
    check_options(options)
    check_ports_free({"--ui-port": options.ui_port, "--report-port": options.report_port})
    settings = SandboxSettings(home=options.home / "sandbox", port=options.service_port, external_dsn=None,
                               aws_port=options.aws_port)
    prepare_home(options.home, lambda: manager.down(settings))
    dagster_home = options.home / "dagster_home"
    results_dir = options.results_dir
    proc = status = None
    server = ReportServer(results_dir, options.report_port, options.home / "report_server.log")
    failures: dict[str, str] = {}
    verdicts: dict[str, dict] = {}
    contention: dict[str, dict] = {}
    builds = demo_builds(options.writes)
    try:
        # Inside the try: a stop while the sandbox starts still stops what had started.
        server.start()
        status = manager.up(settings)
        echo(f"sandbox: {status.url} (AWS {status.aws_endpoint})")
        dagster_process.write_local_instance_yaml(dagster_home)
        proc = dagster_process.start(dagster_home, options.ui_port, _pipeline_env(settings, status, options),
                                     options.home / "dagster.log")
        ui = f"http://127.0.0.1:{options.ui_port}"
        echo(f"Dagster UI: {ui}   reports: {server.url}")
        echo(f"each build: deploy, seed, {options.duration} of load, analysis; the story: {SLOWED} (slowed) "
             f"regresses on {SLOW_OPERATION}, {REBUILD} (same speed) does not"
             + (f"; then the write tests, {LOSSY} losing parallel roster writes" if options.writes else ""))
        lines = []
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            earlier: list[str] = []
            for build in builds:
                if build is builds[-1]:
                    build = slow_build(build, baseline_p50(results_dir, earlier, SLOW_OPERATION))
                pushed = sandbox_aws.push(settings.aws_port, build.tag, build.knobs)
                partition = Build.of(build.tag, pushed["digest"]).key
                earlier.append(partition)
                echo(f"pushed {build.tag} ({build.what}); waiting for the sensor's run of {partition}")
                started = time.monotonic()
                run = _wait_for_run(instance, partition, options.run_timeout_s)
                line = build_line(build, partition, run, instance, time.monotonic() - started, results_dir)
                reason = failure_reason(run, instance, options.run_timeout_s)
                if reason is not None:
                    failures[build.tag] = reason
                verdicts[build.tag] = read_verdict(results_dir, partition)
                contention[build.tag] = read_contention(results_dir, partition)
                lines.append(line)
                echo(line)
            # The trend report is rebuilt by its sensor after each successful build, in the target's pool:
            # stopping Dagster before it ran would leave the report without the last builds.
            if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
                record = instance.get_run_record_by_id(run.run_id)
                ended = record.end_time if record is not None and record.end_time else time.time()
                echo("waiting for the trend report to cover the last build")
                if not wait_for_trend_report(instance, ended - 1):
                    echo("the trend report did not finish within 180 s: it may not show the last build")
        echo("")
        echo(f"summary ({len(lines)} builds) -- UI: {ui}/assets  runs: {ui}/runs")
        echo(f"trend report: {options.trend_report_url}  ({results_dir / 'trend' / 'trend_report.html'})")
        for line in lines:
            echo("  " + line)
        echo(story(verdicts, failures, contention=contention if options.writes else None))
        if options.keep_running:
            echo("running until Ctrl-C")
            while proc.poll() is None:
                time.sleep(1)
    finally:
        stop_stack(proc, status, settings, server)
        echo("stopped the sandbox, Dagster and the report server")
    return 1 if failures else 0
