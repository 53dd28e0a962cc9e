"""Runs the k6 binary of the `k6` package, streams progress, and survives cancellation.

k6 runs in its own session. On a Dagster cancel the step gets an interrupt exception
while k6 gets no signal at all, so the runner SIGINTs k6's group (k6 then stops, writes
its summary and exits 105), waits, SIGKILLs what is left, hands the partial result to
the caller and re-raises so the run ends CANCELED.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ult_pipeline.loadtest.profiles import LoadProfile
from ult_pipeline.processes import stop_group
from ult_pipeline.shipped import shipped

K6_DIR = shipped("k6")  # the checkout's k6/, or the copy an installed wheel carries
EXIT_OK, EXIT_THRESHOLDS, EXIT_SIGNAL = 0, 99, 105
K6_CONFIG_FILE = "k6-config.json"  # an empty k6 config per run: the user's ~/.config/k6 never applies


class K6Error(RuntimeError):
    pass


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    total_s: float
    iterations: int
    request_rate: float
    requests: int
    errors: int

    def line(self) -> str:
        return (
            f"k6: {self.elapsed_s:.0f}/{self.total_s:.0f} s, {self.iterations} iterations, "
            f"{self.request_rate:.1f} req/s now, {self.errors} errors of {self.requests} requests"
        )


@dataclass(frozen=True)
class K6RunResult:
    exit_code: int
    interrupted: bool
    thresholds_crossed: bool
    seconds: float
    samples_path: Path
    summary_path: Path
    summary: dict = field(repr=False)
    stderr_tail: str = field(repr=False, default="")

    @property
    def stop_reason(self) -> str | None:
        """Why k6 stopped before the planned end (None when it did not): killed from outside, or stopped."""
        if not self.interrupted:
            return None
        if self.exit_code < 0:
            return f"k6 was killed by {_signal_name(-self.exit_code)}"
        return f"k6 was stopped (exit code {self.exit_code})"

    @property
    def load_seconds(self) -> float | None:
        """k6's own measure of how long the test ran, in seconds (init and shutdown excluded; for a stopped
        run, up to the stop): count / rate of a counter in its summary. None when no counter has a count."""
        for name in ("iterations", "http_reqs"):
            values = self.summary.get("metrics", {}).get(name) or {}
            count, rate = values.get("count"), values.get("rate")
            if count and rate:
                return count / rate
        return None

    def thresholds(self) -> dict[str, dict[str, bool]]:
        """metric -> {threshold expression: held}."""
        held: dict[str, dict[str, bool]] = {}
        for metric, values in self.summary.get("metrics", {}).items():
            for expression, crossed in (values.get("thresholds") or {}).items():
                held.setdefault(metric, {})[expression] = not crossed
        return held


def k6_binary() -> Path:
    """The k6 binary that the `k6` PyPI package put beside this interpreter."""
    candidate = Path(sys.executable).parent / "k6"
    if candidate.exists():
        return candidate
    raise K6Error(f"no k6 binary beside {sys.executable}; install the project (`pip install -e .`) which pins k6==1.1.0")


def k6_version(binary: Path | None = None) -> str:
    out = subprocess.run([str(binary or k6_binary()), "version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip().split(" (")[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _live_metrics(port: int) -> dict[str, dict]:
    try:
        data = requests.get(f"http://127.0.0.1:{port}/v1/metrics", timeout=2).json()["data"]
    except (requests.RequestException, ValueError, KeyError):
        return {}
    return {m["id"]: m["attributes"].get("sample", {}) for m in data}


@dataclass(frozen=True)
class OtlpOutput:
    """k6's OpenTelemetry output (named `experimental-opentelemetry` in k6 1.1.0), e.g. to New Relic."""

    endpoint: str  # host:port, no scheme (k6's rule), e.g. otlp.nr-data.net:4318
    headers: str = ""  # e.g. "api-key=<license key>": a secret, passed only through the environment
    insecure: bool = False  # plain HTTP (a local collector)

    def env(self, attributes: dict[str, str]) -> dict[str, str]:
        resource = ",".join(f"{k}={v}" for k, v in sorted(attributes.items()))
        env = {
            "K6_OTEL_EXPORTER_TYPE": "http",
            "K6_OTEL_HTTP_EXPORTER_ENDPOINT": self.endpoint,
            "K6_OTEL_HTTP_EXPORTER_INSECURE": "true" if self.insecure else "false",
            "OTEL_RESOURCE_ATTRIBUTES": resource,
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
            "K6_OTEL_FLUSH_INTERVAL": "5s",
        }
        if self.headers:
            env["K6_OTEL_HEADERS"] = self.headers
        return env


# What k6 needs from the parent's environment to run at all: the search path, a home for its config,
# a temp dir, the locale and time zone, CA certificates and proxies to reach a target, the Go runtime's
# tuning knobs. Nothing else: the parent's environment holds secrets (New Relic keys, OTLP headers,
# DAGSTER_PG_PASSWORD, the target's API key and DSN) that k6 must not see, since a k6 script can read
# its whole environment (__ENV) and an output can send it elsewhere.
BASE_VARIABLES = (
    "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE",
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG",
)
# The ULT_* variables the suite reads (k6/lib/env.js, documented in k6/README.md); no other ULT_* name
# (ULT_TARGET_API_KEY, ULT_TARGET_DSN, ...) reaches k6.
SUITE_VARIABLES = (
    "ULT_TARGET_URL", "ULT_IDENTITIES", "ULT_SCENARIO", "ULT_PROFILE", "ULT_RATE", "ULT_DURATION",
    "ULT_PRE_ALLOCATED_VUS", "ULT_MAX_VUS", "ULT_STUDENT_WEIGHT", "ULT_TEACHER_WEIGHT", "ULT_ADMIN_WRITES_WEIGHT",
    "ULT_CONTENTION_WRITERS", "ULT_BUILD",
)


# The parent's K6_* variables that may reach k6: none of them changes what the pipeline reads (its
# outputs, tags, summary, thresholds, scenarios), which the runner sets itself. Every other K6_* of the
# parent (K6_OUT, K6_SYSTEM_TAGS, K6_NO_THRESHOLDS, K6_DURATION, K6_CLOUD_TOKEN, K6_OTEL_*, ...) is dropped:
# k6 ranks environment variables above the script's options, so one left in a worker's environment would
# change a 10-minute run in a way ingest only finds at its end (issue 14).
PASSED_K6_OPTIONS = frozenset({"K6_NO_USAGE_REPORT", "K6_INSECURE_SKIP_TLS_VERIFY", "K6_DNS"})
# k6 1.1.0's default system tags, named on the command line so that no environment variable or config
# file changes the CSV's columns (ingest reads `expected_response`, `scenario` and `status`).
SYSTEM_TAGS = ("proto", "subproto", "status", "method", "url", "name", "group", "check", "error", "error_code",
               "tls_version", "scenario", "service", "expected_response")


def _k6_setting(name: str) -> bool:
    """A K6_* variable of the parent that k6 may get (PASSED_K6_OPTIONS)."""
    return name in PASSED_K6_OPTIONS


def ignored_k6_variables(parent: Mapping[str, str]) -> list[str]:
    """Names (never values) of the parent's K6_* variables k6 does not get, sorted."""
    return sorted(k for k in parent if k.startswith("K6_") and not _k6_setting(k))


def k6_environment(
    parent: Mapping[str, str],
    *,
    target_url: str,
    identities_path: Path,
    cwd: Path,
    profile_env: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
    otlp_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a k6 run (name -> value), built from scratch.

    From ``parent`` (usually os.environ) only BASE_VARIABLES, SUITE_VARIABLES and PASSED_K6_OPTIONS
    are taken; then, each overriding the one before: ``profile_env`` (the load profile's
    ULT_* values), ``extra_env`` (the caller's, taken as given), ``otlp_env`` (the OTLP output's
    settings, its key header included, only when that output is used) and the run's own settings
    (target, identities as an absolute path, ``cwd`` as PWD, CSV time format).
    """
    env = {k: v for k, v in parent.items() if k in BASE_VARIABLES or k in SUITE_VARIABLES or _k6_setting(k)}
    env.update(profile_env)
    env.update(extra_env or {})
    env.update(otlp_env or {})
    env.update({
        # Absolute, from this process's working directory: k6 runs elsewhere (``cwd``), and k6/lib/env.js
        # would take a relative path from $PWD, which is set to where k6 really runs.
        "ULT_TARGET_URL": target_url, "ULT_IDENTITIES": os.path.abspath(identities_path), "PWD": str(cwd),
        "K6_CSV_TIME_FORMAT": "unix_milli",
    })
    return env


class K6Runner:
    def __init__(self, script: Path | None = None, binary: Path | None = None, progress_interval_s: float = 10.0,
                 otlp: OtlpOutput | None = None):
        self.script = Path(script or K6_DIR / "main.js")
        self.binary = binary
        self.progress_interval_s = progress_interval_s
        self.otlp = otlp

    def command(self, samples: Path, summary: Path, api_port: int, tags: dict[str, str]) -> list[str]:
        # Everything ingest relies on is named here: flags rank above k6's environment, config file and
        # the script's options. The config file is an empty one of the run's own, not the user's.
        cmd = [
            str(self.binary or k6_binary()), "run", "--quiet", "--no-color", "--no-usage-report",
            "--config", str(summary.parent / K6_CONFIG_FILE), "--address", f"127.0.0.1:{api_port}",
            "--out", f"csv={samples}", "--summary-export", str(summary), "--system-tags", ",".join(SYSTEM_TAGS),
        ]
        if self.otlp is not None:
            cmd += ["--out", "experimental-opentelemetry"]
        for key, value in sorted(tags.items()):
            cmd += ["--tag", f"{key}={value}"]
        return cmd + [str(self.script)]

    def run(
        self,
        *,
        target_url: str,
        identities_path: Path,
        profile: LoadProfile,
        out_dir: Path,
        tags: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        log: Callable[[str], None] = lambda _m: None,
        on_interrupt: Callable[[K6RunResult], None] | None = None,
    ) -> K6RunResult:
        out_dir.mkdir(parents=True, exist_ok=True)
        samples, summary = out_dir / "samples.csv.gz", out_dir / "summary.json"
        for stale in (samples, summary):
            stale.unlink(missing_ok=True)
        (out_dir / K6_CONFIG_FILE).write_text("{}\n")
        ignored = ignored_k6_variables(os.environ)
        if ignored:
            log(f"k6 does not get {', '.join(ignored)} from this environment: the pipeline sets k6's outputs, "
                "tags, summary, thresholds and scenarios itself (see k6/README.md)")
        api_port = _free_port()
        env = k6_environment(
            os.environ, target_url=target_url, identities_path=identities_path, cwd=self.script.parent,
            profile_env=profile.k6_env(), extra_env=extra_env,
            # The build's attributes go on every exported point.
            otlp_env=self.otlp.env({f"ult.{k}": v for k, v in (tags or {}).items()}) if self.otlp else None,
        )
        stderr_path = out_dir / "k6.stderr.log"
        started = time.monotonic()
        with open(stderr_path, "wb") as stderr_file, open(out_dir / "k6.stdout.log", "wb") as stdout_file:
            proc = subprocess.Popen(
                self.command(samples, summary, api_port, tags or {}), env=env, cwd=self.script.parent,
                stdout=stdout_file, stderr=stderr_file, stdin=subprocess.DEVNULL, start_new_session=True,
            )
            try:
                self._watch(proc, api_port, profile, started, log)
            except BaseException:
                # Cancellation (DagsterExecutionInterruptedError, KeyboardInterrupt) or a crash of ours.
                # k6 stops at once on SIGINT and still writes its summary and samples (exit 105).
                stop_group(proc, signal.SIGINT, grace_s=10.0)
                result = self._result(proc.returncode, True, started, samples, summary, stderr_path)
                log(f"k6 interrupted after {result.seconds:.0f} s (exit code {result.exit_code}); "
                    f"partial results kept in {out_dir}")
                if on_interrupt is not None:
                    try:
                        on_interrupt(result)
                    except Exception as err:  # noqa: BLE001 - the interruption, not this, must reach the caller
                        log(f"keeping the partial results failed: {type(err).__name__}: {err}")
                raise
        code = proc.returncode
        if code < 0:
            # Killed from outside (the OOM killer, SIGKILL, a lost node): not a crash of the test. What k6
            # wrote until then is kept, as an interrupted run (its samples file may end mid-row).
            log(f"k6 was killed by {_signal_name(-code)} after {time.monotonic() - started:.0f} s; "
                f"its partial results are kept in {out_dir}")
            return self._result(code, True, started, samples, summary, stderr_path)
        if code not in (EXIT_OK, EXIT_THRESHOLDS, EXIT_SIGNAL):
            raise K6Error(f"k6 failed with exit code {code}:\n{_tail(stderr_path)}")
        return self._result(code, code == EXIT_SIGNAL, started, samples, summary, stderr_path)

    def _watch(self, proc: subprocess.Popen, port: int, profile: LoadProfile, started: float, log) -> None:
        last_report = started
        previous: tuple[float, int] | None = None
        while proc.poll() is None:
            time.sleep(0.2)
            now = time.monotonic()
            if now - last_report < self.progress_interval_s:
                continue
            last_report = now
            metrics = _live_metrics(port)
            requests_count = int(metrics.get("http_reqs", {}).get("count", 0))
            since, before = previous if previous is not None else (started, 0)
            rate = (requests_count - before) / (now - since) if now > since else 0.0
            previous = (now, requests_count)
            failed_rate = metrics.get("http_req_failed", {}).get("rate", 0) or 0
            log(Progress(
                elapsed_s=now - started, total_s=profile.seconds,
                iterations=int(metrics.get("iterations", {}).get("count", 0)), request_rate=rate,
                requests=requests_count, errors=round(failed_rate * requests_count),
            ).line())

    @staticmethod
    def _result(code, interrupted, started, samples, summary, stderr_path) -> K6RunResult:
        try:
            summary_data = json.loads(summary.read_text())
        except (OSError, ValueError):
            summary_data = {}
        crossed = code == EXIT_THRESHOLDS or any(
            crossed for m in summary_data.get("metrics", {}).values() for crossed in (m.get("thresholds") or {}).values()
        )
        return K6RunResult(
            exit_code=code if code is not None else -1, interrupted=interrupted, thresholds_crossed=crossed,
            seconds=time.monotonic() - started, samples_path=samples, summary_path=summary, summary=summary_data,
            stderr_tail=_tail(stderr_path),
        )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError:
        return ""
