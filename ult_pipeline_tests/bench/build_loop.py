"""How fast is the build loop? Push images into the sandbox and time every stage of each build.

Starts a sandbox and Dagster as `ult demo` does (its own ports and a temporary home, never the
demo's), pushes `--builds` images one after another (each waits for the previous build's run to
end), and prints per build, from Dagster's event log and the files k6 wrote:

- push -> run created (the ECR sensor's tick) -> run start (the queue, the run worker's start),
- run start -> first k6 request (deployment, wipe + seed, k6's start: k6's first sample's time in
  `<results>/<partition>/k6/samples.csv.gz`),
- the load itself (first sample -> k6 end: the time `summary.json`, written as k6 exits, was written),
- k6 end -> verdict (`ab_confirmation`'s materialization) and -> run end,
- every step's time in Dagster (STEP_START -> STEP_SUCCESS/FAILURE) and the wait before it (since
  the run's start or the previous step's end: with one process per step, the process's start).

Then a newer push while k6 runs: the time from that push to the first run's k6 being gone and to
its run being CANCELED. Totals are checked against the targets of issue 16: push to first k6
request <= 45 s, everything but k6 <= 20 s per build, a newer push stops the running test <= 10 s.

The same run measures a baseline of this machine's speed: how long one Python process takes to
load the code location (`import ult_pipeline.definitions`), i.e. what each extra process costs;
the overheads are also given as a multiple of it. The machine is shared: compare runs against
their own baseline.

    python -m ult_pipeline_tests.bench.build_loop [--builds 3] [--duration 30s] [--profile standard]
        [--sensor-interval 5] [--dequeue-interval N] [--json out.json]

Measured on 2 shared cores (other tests running; 3 builds of 30 s, standard dataset, medians, worst in
brackets; "not k6" is push to run end minus the load):

- one process per step (Dagster's default executor), sensor 5 s, queue 5 s (baseline 4.0 s): push to
  first request 65 s (72), not k6 125 s (130): 67 to 89 s of every build went to starting step processes;
- `in_process_executor` (jobs.py), same intervals (baseline 6.1 s): 27 s (42) and 31 s (46); 0.5 s
  between steps; a newer push stopped k6 in 3.7 s (7.4 s before) and the partial results were kept;
- plus ULT_SENSOR_INTERVAL_S=1 (baseline 2.6 s): 19 s (24) and 22 s (26). The daemon evaluates sensors
  at most every 5 s: an interval of 5 ticks every 10 s, any interval up to 4 every 5 s;
- plus the queue's dequeue_interval_seconds 1 (baselines 1.5 s and 2.2 s): 9 s (11) and 12 s (13);
  7 s (8) and 8 s (9); a newer push stopped k6 in 4.6 s and 2.6 s.

What is left: the sensor's 5 s loop, the run worker's start (a Python process loading Dagster and the
code location: the baseline), deploy about 1 s, seeding 1.5 to 6 s, analysis and export under 1 s. The
trend report run after each build holds the pool for 3 to 10 s (a push right after a build waits for
it; measured here between builds, not counted in them).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg
import psutil
import yaml

from ult_pipeline.build import Build
from ult_pipeline.demo import dagster_process
from ult_pipeline.demo.run import DemoOptions, ReportServer, _pipeline_env, failure_reason, stop_stack
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline.sandbox.settings import SandboxSettings

TARGET_PUSH_TO_FIRST_REQUEST_S = 45.0
TARGET_NOT_K6_S = 20.0
TARGET_STOP_S = 10.0
VERDICT_ASSET = "ab_confirmation"
K6_STEP = "k6_results"
DEMO_PORTS = {18300, 18180, 18580, 18380}


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in DEMO_PORTS:
            return port


def process_baseline_s(repeat: int = 3) -> float:
    """Median seconds one Python process takes to load the code location (the cost of a process per step)."""
    times = []
    for _ in range(repeat):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import ult_pipeline.definitions"], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        times.append(time.monotonic() - started)
    return statistics.median(times)


@dataclass
class StepTime:
    key: str
    wait_s: float  # since the run's start or the previous step's end (process start, scheduling)
    body_s: float  # STEP_START -> STEP_SUCCESS/FAILURE
    status: str


@dataclass
class BuildTimes:
    tag: str
    partition: str
    status: str = "missing"
    why: str | None = None  # why the run did not succeed
    push_to_created_s: float | None = None
    created_to_start_s: float | None = None
    push_to_start_s: float | None = None
    start_to_first_request_s: float | None = None
    push_to_first_request_s: float | None = None
    k6_load_s: float | None = None
    k6_end_to_verdict_s: float | None = None
    verdict_to_run_end_s: float | None = None
    push_to_run_end_s: float | None = None
    not_k6_s: float | None = None
    steps: list[StepTime] = field(default_factory=list)


def _events(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> list[dg.EventLogEntry]:
    return [r for r in instance.all_logs(run_id, of_type=kind) if r.dagster_event is not None]


def _first_ts(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> float | None:
    found = _events(instance, run_id, kind)
    return min(r.timestamp for r in found) if found else None


def step_times(instance: dg.DagsterInstance, run_id: str) -> list[StepTime]:
    """Each step's time from its STEP_START to its end, and the wait before its start."""
    run_start = _first_ts(instance, run_id, dg.DagsterEventType.RUN_START)
    starts = {r.dagster_event.step_key: r.timestamp for r in _events(instance, run_id, dg.DagsterEventType.STEP_START)}
    ends: dict[str, tuple[float, str]] = {}
    for kind, status in ((dg.DagsterEventType.STEP_SUCCESS, "ok"), (dg.DagsterEventType.STEP_FAILURE, "failed")):
        for r in _events(instance, run_id, kind):
            ends[r.dagster_event.step_key] = (r.timestamp, status)
    steps = []
    for key, start in sorted(starts.items(), key=lambda kv: kv[1]):
        before = [end for end, _ in ends.values() if end <= start]
        since = max(before) if before else (run_start or start)
        end, status = ends.get(key, (None, "no end"))
        steps.append(StepTime(key, start - since, (end - start) if end else float("nan"), status))
    return steps


def k6_window(k6_dir: Path) -> tuple[float | None, float | None]:
    """(unix time of k6's first sample, unix time k6 ended: summary.json written) of one run."""
    first = None
    samples = k6_dir / "samples.csv.gz"
    try:
        with gzip.open(samples, "rt", newline="") as f:
            reader = csv.DictReader(f)
            for i, row in enumerate(reader):
                ts = row.get("timestamp")
                if ts:
                    value = float(ts) / 1000.0
                    first = value if first is None else min(first, value)
                if i >= 200:  # k6 writes in time order, give or take a flush
                    break
    except (OSError, EOFError, ValueError):
        pass
    summary = k6_dir / "summary.json"
    end = summary.stat().st_mtime if summary.exists() else None
    return first, end


def _find_run(instance: dg.DagsterInstance, partition: str) -> dg.RunRecord | None:
    records = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": partition}), limit=1)
    return records[0] if records else None


def _wait(predicate, timeout_s: float, poll_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    return None


IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def wait_idle(instance: dg.DagsterInstance, timeout_s: float) -> float | None:
    """Seconds waited until no run is in flight (None: none was)."""
    started = time.monotonic()
    if not instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=1):
        return None
    _wait(lambda: not instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=1), timeout_s, 0.5)
    return time.monotonic() - started


def wait_trend_report(instance: dg.DagsterInstance, after: float, timeout_s: float = 60) -> None:
    """After a successful build the trend report sensor requests a run (holding the pool): wait until one
    created after `after` (unix time) exists, then until nothing is in flight."""
    def requested():
        return any(r.create_timestamp.timestamp() >= after
                   for r in instance.get_run_records(filters=dg.RunsFilter(job_name="trend_report_job"), limit=3))

    if _wait(requested, timeout_s, 0.5):
        wait_idle(instance, timeout_s * 5)


def measure_build(instance: dg.DagsterInstance, results_dir: Path, tag: str, partition: str, pushed_at: float,
                  timeout_s: float) -> BuildTimes:
    times = BuildTimes(tag, partition)
    record = _wait(lambda: (r := _find_run(instance, partition)) and r.dagster_run.is_finished and r, timeout_s, 1.0)
    if not record:
        record = _find_run(instance, partition)
        times.status = f"not finished ({record.dagster_run.status.value})" if record else "no run"
        return times
    run = record.dagster_run
    times.status = run.status.value
    times.why = failure_reason(run, instance)
    created = record.create_timestamp.timestamp()
    start = _first_ts(instance, run.run_id, dg.DagsterEventType.RUN_START)
    end = max((r.timestamp for kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE,
                                         dg.DagsterEventType.RUN_CANCELED)
               for r in _events(instance, run.run_id, kind)), default=None)
    verdict = min((r.timestamp for r in _events(instance, run.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)
                   if r.dagster_event.asset_key == dg.AssetKey(VERDICT_ASSET)), default=None)
    first, k6_end = k6_window(ResultsStoreResource(base_dir=str(results_dir)).partition_dir(partition) / "k6")
    times.push_to_created_s = created - pushed_at
    if start:
        times.created_to_start_s = start - created
        times.push_to_start_s = start - pushed_at
    if start and first:
        times.start_to_first_request_s = first - start
        times.push_to_first_request_s = first - pushed_at
    if first and k6_end:
        times.k6_load_s = k6_end - first
    if k6_end and verdict:
        times.k6_end_to_verdict_s = verdict - k6_end
    if verdict and end:
        times.verdict_to_run_end_s = end - verdict
    if end:
        times.push_to_run_end_s = end - pushed_at
        if times.k6_load_s is not None:
            times.not_k6_s = times.push_to_run_end_s - times.k6_load_s
    times.steps = step_times(instance, run.run_id)
    return times


def _k6_of(target_url: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "k6" and proc.environ().get("ULT_TARGET_URL") == target_url:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@dataclass
class StopTimes:
    status: str
    push_to_k6_gone_s: float | None
    push_to_canceled_s: float | None
    partial_results_kept: bool | None = None  # k6_results materialized with interrupted=True


def partial_k6_kept(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Did the stopped run record k6's partial results (a k6_results materialization marked interrupted)?"""
    for record in _events(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is not None and materialization.asset_key == dg.AssetKey(K6_STEP):
            entry = materialization.metadata.get("interrupted")
            return bool(getattr(entry, "value", entry))
    return False


def measure_stop(instance: dg.DagsterInstance, port: int, target_url: str, results_dir: Path, timeout_s: float
                 ) -> StopTimes:
    """Push an image, wait until its k6 sends requests, push a newer one: how soon is the first test stopped?"""
    wait_idle(instance, timeout_s)
    pushed = sandbox_aws.push(port, "v9.0.0-stopped", ServiceKnobs())
    partition = Build.of("v9.0.0-stopped", pushed["digest"]).key
    samples = ResultsStoreResource(base_dir=str(results_dir)).partition_dir(partition) / "k6" / "samples.csv.gz"

    def k6_running():
        return _k6_of(target_url) if samples.exists() and samples.stat().st_size > 0 else None

    k6 = _wait(k6_running, timeout_s, 0.5)
    if not k6:
        record = _find_run(instance, partition)
        return StopTimes(f"k6 never ran ({record.dagster_run.status.value if record else 'no run'})", None, None)
    time.sleep(3)  # well into the load
    newer_at = time.time()
    sandbox_aws.push(port, "v9.0.1-newer", ServiceKnobs())
    gone = _wait(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in k6) or None,
                 60, 0.1)
    gone_s = time.time() - newer_at if gone else None
    canceled = _wait(lambda: (r := _find_run(instance, partition)) and r.dagster_run.is_finished and r, 120, 0.2)
    canceled_s = None
    status = canceled.dagster_run.status.value if canceled else "not finished"
    if canceled and canceled.dagster_run.status == dg.DagsterRunStatus.CANCELED:
        ts = _first_ts(instance, canceled.dagster_run.run_id, dg.DagsterEventType.RUN_CANCELED)
        canceled_s = (ts - newer_at) if ts else None
    kept = partial_k6_kept(instance, canceled.dagster_run.run_id) if canceled else None
    return StopTimes(status, gone_s, canceled_s, kept)


def trend_runs_s(instance: dg.DagsterInstance) -> list[float]:
    """Seconds each trend report run held the pool (created -> ended): the next build's run waits for it."""
    seconds = []
    for record in instance.get_run_records(filters=dg.RunsFilter(job_name="trend_report_job")):
        if record.end_time and record.dagster_run.is_finished:
            seconds.append(record.end_time - record.create_timestamp.timestamp())
    return seconds


def _f(value: float | None, width: int = 6) -> str:
    return f"{value:{width}.1f}" if value is not None else " " * (width - 1) + "-"


def report(builds: list[BuildTimes], stop: StopTimes | None, baseline_s: float, trend_s: list[float] | None = None,
           echo=print) -> bool:
    """Prints the tables and the totals against the targets; True when every target is met."""
    echo(f"baseline: one process loading the code location takes {baseline_s:.2f} s on this machine now")
    if trend_s:
        echo(f"trend report runs (after each build, holding the pool: a push then waits): "
             f"{', '.join(f'{t:.1f}' for t in trend_s)} s (not counted in the builds below)")
    echo("")
    echo("build      status   push>run  run>start  push>start  start>1st req  push>1st req  k6 load  "
         "k6 end>verdict  verdict>end  push>end  not k6")
    for b in builds:
        echo(f"{b.tag:10} {b.status[:8]:8} {_f(b.push_to_created_s, 8)} {_f(b.created_to_start_s, 10)} "
             f"{_f(b.push_to_start_s, 11)} {_f(b.start_to_first_request_s, 14)} {_f(b.push_to_first_request_s, 13)} "
             f"{_f(b.k6_load_s, 8)} {_f(b.k6_end_to_verdict_s, 15)} {_f(b.verdict_to_run_end_s, 12)} "
             f"{_f(b.push_to_run_end_s, 9)} {_f(b.not_k6_s, 7)}")
    for b in builds:
        if b.why:
            echo(f"{b.tag}: {b.why}")
    echo("")
    for b in builds:
        echo(f"{b.tag}: steps (wait before the step + time in it, s)")
        for s in b.steps:
            echo(f"    {s.key:28} wait {s.wait_s:5.1f}  in step {s.body_s:6.1f}  {s.status}")
        if b.steps:
            waits = sum(s.wait_s for s in b.steps)
            echo(f"    {'total wait between steps':28} {waits:5.1f} s = {waits / baseline_s:.1f} x the baseline")
    echo("")
    ok = True

    def target(name: str, values: list[float | None], limit: float) -> None:
        nonlocal ok
        seen = [v for v in values if v is not None]
        if not seen or len(seen) < len(values):
            ok = False
            echo(f"{name:42} not measured for every build  (target <= {limit:.0f} s)  MISSED")
            return
        worst = max(seen)
        met = worst <= limit
        ok = ok and met
        echo(f"{name:42} median {statistics.median(seen):5.1f} s, worst {worst:5.1f} s "
             f"({worst / baseline_s:4.1f} x baseline)  target <= {limit:.0f} s  {'met' if met else 'MISSED'}")

    target("push to first k6 request", [b.push_to_first_request_s for b in builds], TARGET_PUSH_TO_FIRST_REQUEST_S)
    target("everything but k6 (push to run end - load)", [b.not_k6_s for b in builds], TARGET_NOT_K6_S)
    if stop is not None:
        echo(f"newer push while k6 runs: first run {stop.status}; k6 gone after {_f(stop.push_to_k6_gone_s, 4)} s, "
             f"run CANCELED after {_f(stop.push_to_canceled_s, 4)} s; partial k6 results kept (interrupted): "
             f"{stop.partial_results_kept}")
        if not stop.partial_results_kept:
            ok = False
        target("newer push stops the running test (k6 gone)", [stop.push_to_k6_gone_s], TARGET_STOP_S)
    return ok


def _set_instance(dagster_home: Path, dequeue_interval_s: int | None) -> None:
    """The demo's instance (the project's dagster.yaml), the queue's dequeue interval overridden when asked."""
    path = dagster_process.write_local_instance_yaml(dagster_home)
    if dequeue_interval_s is None:
        return
    config = yaml.safe_load(path.read_text())
    coordinator = config.setdefault("run_coordinator", {})
    coordinator.setdefault("config", {})["dequeue_interval_seconds"] = dequeue_interval_s
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=3)
    parser.add_argument("--duration", default="30s", help="k6 load per build")
    parser.add_argument("--profile", default="standard", help="dataset profile")
    parser.add_argument("--sensor-interval", type=int, default=5, help="ULT_SENSOR_INTERVAL_S (the demo's: 5)")
    parser.add_argument("--dequeue-interval", type=int, default=None,
                        help="the run queue's dequeue_interval_seconds (default: dagster.yaml's)")
    parser.add_argument("--no-stop-test", action="store_true", help="skip the newer-push-stops-the-test check")
    parser.add_argument("--run-timeout", type=float, default=900)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep-home", action="store_true")
    args = parser.parse_args(argv)

    baseline_s = process_baseline_s()
    root = Path(tempfile.mkdtemp(prefix="ult-bl-"))  # short: PostgreSQL's socket path is limited
    home = root / "home"
    options = DemoOptions(home=home, service_port=_free_port(), aws_port=_free_port(), ui_port=_free_port(),
                          duration=args.duration, dataset_profile=args.profile, keep_running=False,
                          run_timeout_s=args.run_timeout, confirm=False, report_port=_free_port())
    settings = SandboxSettings(home=home / "sandbox", port=options.service_port, external_dsn=None,
                               aws_port=options.aws_port)
    dagster_home = home / "dagster_home"
    proc = status = None
    builds: list[BuildTimes] = []
    stop: StopTimes | None = None
    server = ReportServer(options.results_dir, options.report_port, home / "report_server.log")
    print(f"home {home}; UI http://127.0.0.1:{options.ui_port}; {args.builds} builds of {args.duration} "
          f"({args.profile} dataset), sensor interval {args.sensor_interval} s", flush=True)
    try:
        home.mkdir(parents=True)
        server.start()
        status = manager.up(settings)
        _set_instance(dagster_home, args.dequeue_interval)
        env = {**_pipeline_env(settings, status, options), "ULT_SENSOR_INTERVAL_S": str(args.sensor_interval)}
        proc = dagster_process.start(dagster_home, options.ui_port, env, home / "dagster.log")
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            for i in range(args.builds):
                tag = f"v1.0.{i}"
                # Each build from an idle pipeline: the trend report run after the previous build holds the pool.
                idle = wait_idle(instance, args.run_timeout)
                if idle is not None:
                    print(f"  waited {idle:.1f} s for the runs in flight (the trend report) to end", flush=True)
                pushed_at = time.time()
                pushed = sandbox_aws.push(settings.aws_port, tag, ServiceKnobs())
                partition = Build.of(tag, pushed["digest"]).key
                print(f"pushed {tag} ({partition}); waiting for its run", flush=True)
                times = measure_build(instance, options.results_dir, tag, partition, pushed_at, args.run_timeout)
                print(f"  {times.status}: push to first k6 request {_f(times.push_to_first_request_s, 0)} s, "
                      f"push to run end {_f(times.push_to_run_end_s, 0)} s", flush=True)
                builds.append(times)
                if times.status == "SUCCESS" and times.push_to_run_end_s is not None:
                    wait_trend_report(instance, pushed_at + times.push_to_run_end_s - 1)
            if not args.no_stop_test:
                print("the stop test: a newer push while k6 runs", flush=True)
                stop = measure_stop(instance, settings.aws_port, status.url, options.results_dir, args.run_timeout)
            trend_s = trend_runs_s(instance)
        print("", flush=True)
        ok = report(builds, stop, baseline_s, trend_s)
        if args.json:
            args.json.write_text(json.dumps({"baseline_s": baseline_s, "trend_runs_s": trend_s, "builds": [asdict(b) for b in builds],
                                             "stop": asdict(stop) if stop else None, "targets_met": ok}, indent=1))
        return 0 if ok else 1
    finally:
        stop_stack(proc, status, settings, server)
        if not args.keep_home:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {home}")


if __name__ == "__main__":
    sys.exit(main())
