"""Session-wide servers, and the suite's two speeds.

One sandbox (embedded PostgreSQL + service) for all tests that need it: the machine has two
cores, starting PostgreSQL and the service once per session keeps the suite fast.

Two speeds:
    python -m pytest -q ult_pipeline_tests -m "not slow"   # unit, contract, moto in-process: minutes
    python -m pytest -q ult_pipeline_tests                 # everything, as CI runs it
A test is slow when it is marked `@pytest.mark.slow` in its module, or named in `SLOW_TESTS` below
(k6 runs, materializations of the whole chain, the demo, a browser, fresh installs, sandboxes of
its own): the list keeps the selection in one place without editing the test modules.

Browser tests drive Debian's chromium (/usr/bin/chromium) and are skipped without it; the run then
ends with one line saying how many were skipped and how to install it (`pytest_terminal_summary`).
"""

from __future__ import annotations

import socket
import tempfile
import warnings
from pathlib import Path

import pytest

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import SandboxSettings

ROOT = Path(__file__).resolve().parent.parent

# Node-id prefixes (a folder ending in "/", a module, or module::test, which also covers its
# parametrized cases) of the slow tests, each with why. Seconds measured on the 2-core machine.
SLOW_TESTS: dict[str, str] = {
    "ult_pipeline_tests/demo/test_demo_e2e.py": "the demo end to end: sandbox, dagster dev, k6 per build (minutes)",
    "ult_pipeline_tests/demo/test_demo_stop.py": "starts the whole demo to stop it",
    "ult_pipeline_tests/demo/test_run.py::test_ult_demo_refuses_a_foreign_home_in_one_line":
        "an `ult demo` process imports Dagster (~5 s)",
    "ult_pipeline_tests/demo/test_run.py::test_ult_demo_refuses_a_taken_port_in_one_line_before_anything_starts":
        "an `ult demo` process imports Dagster (~5 s)",
    "ult_pipeline_tests/assets/test_pipeline_chain.py": "materializes the whole chain for several builds (~60 s)",
    "ult_pipeline_tests/assets/test_ab_confirmation.py": "A/B confirmation: several k6 runs",
    "ult_pipeline_tests/assets/test_k6_results.py": "k6 runs inside materializations (~10 s each)",
    "ult_pipeline_tests/loadtest/test_otlp.py": "a k6 run exporting over OTLP (~9 s)",
    "ult_pipeline_tests/sandbox/test_manager.py::test_up_status_down_through_the_cli":
        "a sandbox of its own up, status, down through `ult` (~14 s)",
    "ult_pipeline_tests/sandbox/test_manager.py::test_up_recovers_a_state_left_by_a_killed_session":
        "a sandbox of its own, killed and started again (~14 s)",
    "ult_pipeline_tests/sandbox/test_manager.py::test_a_taken_port_is_a_clear_error":
        "a sandbox of its own (~9 s)",
    "ult_pipeline_tests/sandbox/test_manager.py::test_a_service_restart_keeps_moto_where_it_is":
        "a sandbox of its own, its service restarted (~5 s)",
    "ult_pipeline_tests/sandbox/test_manager.py::test_a_service_stopped_while_starting_is_not_left_behind":
        "a sandbox service of its own, stopped while starting (~3 s)",
    "ult_pipeline_tests/sandbox/test_manager.py::test_down_does_not_stop_an_outside_database":
        "a sandbox of its own on the session's database (~3 s)",
    "ult_pipeline_tests/analysis/test_report.py::test_renders_in_a_real_browser_with_charts_and_no_console_errors":
        "drives a browser (chromium)",
    "ult_pipeline_tests/sensors/test_ecr_image_sensor.py::test_pages_through_more_than_1000_images":
        "pushes 1000+ images to moto (~5 s)",
    "ult_pipeline_tests/test_installed_package.py": "a fresh virtual environment and `pip install .`",
    # Seconds each, measured on the fast path (--durations): the fast path stays under 3 minutes.
    "ult_pipeline_tests/seeding/test_plan.py::test_every_body_of_every_profile_fits_the_limit":
        "plans every profile's bodies, large ones too, at four concurrencies (~17 s)",
    "ult_pipeline_tests/seeding/test_plan.py::test_every_body_of_the_large_profile_fits_the_limit_and_nothing_is_lost":
        "plans 100,000 students' bodies (~2 s)",
    "ult_pipeline_tests/seeding/test_exactly_once.py::test_a_lost_answer_of_a_call_that_landed_gives_the_exact_dataset":
        "seeds through a fault proxy six times, two of them waiting out a timeout (~13 s)",
    "ult_pipeline_tests/deploy/test_iam_policy.py": "runs every production path against moto to record its calls (~6 s)",
    "ult_pipeline_tests/test_definitions.py::test_dg_check_defs_passes": "a `dg check defs` process (~3 s)",
    "ult_pipeline_tests/deploy/test_ecs.py::test_a_service_that_never_becomes_stable_times_out_with_its_rollout_state":
        "waits out a rollout timeout (~2.5 s)",
    "ult_pipeline_tests/sensors/test_ecr_sensor_budget.py": "waits out the sensor's time budget against a hanging "
        "endpoint (~4 s)",
}


class SlowListWarning(pytest.PytestWarning):
    """An entry of SLOW_TESTS names a module or test that no longer exists."""


def _slow_reason(nodeid: str) -> str | None:
    for prefix, reason in SLOW_TESTS.items():
        if nodeid == prefix or nodeid.startswith(prefix if prefix.endswith("/") else (prefix + "::", prefix + "[")):
            return reason
    return None


def _stale_entries() -> list[str]:
    """Entries whose file, or test function in it, is gone (a renamed test would silently turn fast)."""
    stale = []
    for prefix in SLOW_TESTS:
        path, _, test = prefix.partition("::")
        file = ROOT / path
        if not file.exists() or (test and f"def {test.split('[')[0]}(" not in file.read_text()):
            stale.append(prefix)
    return stale


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = _slow_reason(item.nodeid)
        if reason and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow(reason=reason))
    for prefix in _stale_entries():
        warnings.warn(SlowListWarning(f"SLOW_TESTS in ult_pipeline_tests/conftest.py names {prefix}, "
                                      "which does not exist: update the entry"), stacklevel=1)


def chromium_skips(skipped: list) -> int:
    """How many of the skipped test reports were skipped for a missing chromium (their reason names it)."""
    return sum(1 for report in skipped if "chromium" in str(getattr(report, "longrepr", "")).lower())


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    # Loud, last: a skipped browser test reads like a pass in the one-line summary above.
    missing = chromium_skips(terminalreporter.stats.get("skipped", []))
    if missing:
        terminalreporter.write_line(
            f"{missing} browser test{'s were' if missing != 1 else ' was'} SKIPPED: chromium is not installed "
            "(/usr/bin/chromium); install it with `sudo apt-get install chromium` (as .ci/run does) and run again",
            yellow=True, bold=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox_settings() -> SandboxSettings:
    # Short path: PostgreSQL's Unix socket path has a length limit.
    home = Path(tempfile.mkdtemp(prefix="ult-sb-"))
    return SandboxSettings(home=home, port=free_port(), external_dsn=None, aws_port=free_port())


@pytest.fixture(scope="session")
def sandbox(sandbox_settings):
    status = manager.up(sandbox_settings)
    yield status
    manager.down(sandbox_settings, purge=True)


@pytest.fixture(scope="session")
def results_base():
    return Path(tempfile.mkdtemp(prefix="ult-res-"))


@pytest.fixture(scope="session")
def pipeline_resources(sandbox, sandbox_settings, results_base):
    """The pipeline's resources bound to the session's sandbox."""
    from ult_pipeline.resources.aws import AwsResource
    from ult_pipeline.resources.k6 import K6RunnerResource
    from ult_pipeline.resources.target import (
        ResultsStoreResource,
        TargetApiResource,
        TargetDatabaseResource,
        TokenSignerResource,
    )
    from ult_pipeline.resources.telemetry import SandboxTelemetryResource
    from ult_pipeline.sandbox import aws as sandbox_aws
    from ult_pipeline.sandbox.deployer import SandboxDeployerResource

    sandbox_aws.ensure_credentials()
    return {
        "aws": AwsResource(endpoint_url=sandbox_aws.endpoint(sandbox_settings.aws_port)),
        "target_api": TargetApiResource(url=sandbox.url, api_key=sandbox.api_key),
        "target_db": TargetDatabaseResource(dsn=sandbox.dsn, environment=sandbox_settings.environment),
        "token_signer": TokenSignerResource(),
        "target_deployer": SandboxDeployerResource(
            home=str(sandbox_settings.home), port=sandbox_settings.port, aws_port=sandbox_settings.aws_port
        ),
        "results_store": ResultsStoreResource(base_dir=str(results_base)),
        "k6_runner": K6RunnerResource(progress_interval_s=2.0),
        "telemetry_source": SandboxTelemetryResource(metrics_url=sandbox.url + "metrics"),
    }
