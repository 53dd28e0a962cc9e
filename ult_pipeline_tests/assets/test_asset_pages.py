"""The asset pages in a real browser: Dagster's own UI (`dagster-webserver` on loopback) over an
instance holding five builds' runs of stand-ins for k6_results and ab_confirmation (same names and
checks) whose metadata comes from the assets' real metadata functions; the last build's run stopped
at k6_results' blocking check no_dropped_iterations, and `skipped_checks_sensor`'s recording ran.

What a reader relies on: the final verdict is the first entry of ab_confirmation's page and the page
says which build it is; numbers carry units in their names and are rounded; Dagster's Plots view of
k6_results has a p95 plot per operation across the builds; a check the failed run never got to
says "skipped: ..." rather than "Execution failed". Screenshots go to the test's folder and to
$ULT_TEST_ARTIFACTS when set.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from ult_pipeline.analysis.gate import decide
from ult_pipeline.analysis.regression import DEFAULT_GATE
from ult_pipeline.assets.ab_confirmation import ab_metadata, final_verdict, no_regression_result
from ult_pipeline.assets.k6_results import NO_DROPPED_ITERATIONS, RUN_COMPLETE, THRESHOLDS_HELD, result_metadata
from ult_pipeline.demo.dagster_process import write_local_instance_yaml
from ult_pipeline.processes import stop_group
from ult_pipeline.sensors.run_failures import record_skipped_checks
from ult_pipeline_tests.assets.pages import judged, k6_result
from ult_pipeline_tests.browser import CHROMIUM, launch
from ult_pipeline_tests.conftest import free_port

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"),
]

BUILDS = ["v1.0.0-00000000000a", "v1.0.1-00000000000b", "v1.0.2-00000000000c", "v1.1.0-00000000000d"]
SLOWED = BUILDS[-1]  # userNode 40 % slower: regressed
FAILED = "v1.1.1-00000000000e"  # its run stopped at k6_results.no_dropped_iterations
START_TIMEOUT_S = 120
# A float as Python prints it unrounded (0.0009549274255156608): never on a page.
UNROUNDED = re.compile(r"\d\.\d{6,}")


class Build(dg.Config):
    seed: int = 0
    slow: float = 1.0  # userNode this many times slower
    dropped: int = 0  # > 0: no_dropped_iterations fails, and the run stops there


builds = dg.DynamicPartitionsDefinition(name="builds")
K6_CHECKS = (THRESHOLDS_HELD, NO_DROPPED_ITERATIONS, RUN_COMPLETE)


@dg.asset(name="k6_results", partitions_def=builds,
          check_specs=[dg.AssetCheckSpec(name, asset="k6_results", blocking=True) for name in K6_CHECKS])
def k6_results_stand_in(context: dg.AssetExecutionContext, config: Build):
    result = k6_result(seed=config.seed, slow=config.slow)
    yield dg.Output({}, metadata=result_metadata(result, context.partition_key, context.run.tags))
    for name in K6_CHECKS:
        failed = name == NO_DROPPED_ITERATIONS and config.dropped > 0
        yield dg.AssetCheckResult(check_name=name, passed=not failed,
                                  description=f"{config.dropped} iterations dropped" if failed else None)


@dg.asset(name="ab_confirmation", partitions_def=builds, deps=["k6_results"],
          check_specs=[dg.AssetCheckSpec("no_regression", asset="ab_confirmation")])
def ab_confirmation_stand_in(context: dg.AssetExecutionContext, config: Build):
    operations, metrics = judged(slow_from=7 if config.slow > 1 else None, factor=config.slow, seed=config.seed)
    final = final_verdict(context.partition_key, operations, gate=DEFAULT_GATE)
    yield dg.Output({}, metadata=ab_metadata(final, operations, metrics, DEFAULT_GATE, context.run.tags))
    yield no_regression_result(decide(operations, DEFAULT_GATE))


STAND_INS = dg.Definitions(assets=[k6_results_stand_in, ab_confirmation_stand_in],
                           jobs=[dg.define_asset_job("load_test_job")])


def record_builds(instance: dg.DagsterInstance) -> None:
    """One run per build, in push order: four complete (the last one slowed), then one that fails."""
    instance.add_dynamic_partitions("builds", [*BUILDS, FAILED])
    job = STAND_INS.resolve_job_def("load_test_job")
    for i, key in enumerate([*BUILDS, FAILED]):
        plan = {"seed": i, "slow": 1.4 if key == SLOWED else 1.0, "dropped": 40 if key == FAILED else 0}
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False,
                                        run_config={"ops": {n: {"config": plan} for n in ("k6_results",
                                                                                          "ab_confirmation")}})
        assert result.success == (key != FAILED), key
    [failed] = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": FAILED}))
    assert record_skipped_checks(instance, failed, env={})


def start_webserver(home: Path, port: int) -> subprocess.Popen:
    """`dagster-webserver` on 127.0.0.1 with the project's code location, answering /server_info."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "ULT_TARGET_MODE": "sandbox"}
    log = open(home / "webserver.log", "wb")  # noqa: SIM115 -- the child writes it; closed with the test's folder
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
         "-m", "ult_pipeline.definitions"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited ({proc.returncode}): {(home / 'webserver.log').read_text()}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.5)
    stop_group(proc, signal.SIGTERM, 10)
    raise AssertionError(f"dagster-webserver did not answer within {START_TIMEOUT_S} s: "
                         f"{(home / 'webserver.log').read_text()[-2000:]}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    write_local_instance_yaml(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        record_builds(instance)
    port = free_port()
    proc = start_webserver(home, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc, signal.SIGTERM, 20)


@pytest.fixture
def page(ui, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.errors = errors
            yield page
        finally:
            browser.close()


def open_page(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    # Dagster's first-visit "Join the community" dialog covers the page: dismiss it when it shows.
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.click(timeout=3_000)
    except Exception:  # noqa: BLE001 -- not shown (already dismissed in this browser, or a later version)
        pass


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    artifacts = os.environ.get("ULT_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(artifacts) / name)
    return path


def metadata_keys(page) -> list[str]:
    """The keys of the Metadata table on an asset's overview, top to bottom."""
    table = page.locator("table", has=page.locator("td", has_text=re.compile(r"^Key$"))).first
    table.wait_for(timeout=30_000)
    rows = table.locator(":scope > tbody > tr")
    return [rows.nth(i).locator(":scope > td").first.inner_text().strip() for i in range(rows.count())]


@pytest.mark.slow
def test_the_final_verdict_comes_first_and_every_number_has_its_unit(ui, page, tmp_path):
    open_page(page, f"{ui}/assets/ab_confirmation")
    keys = metadata_keys(page)
    shot = screenshot(page, tmp_path, "ab_confirmation_page.png")
    assert keys[:4] == ["verdict", "regressed_operations", "build", "image"], keys
    body = page.inner_text("body")
    # The newest materialization is the slowed build's (the failed build's run never got here): its page
    # says which build it is, with its verdict.
    assert SLOWED in body and "regressed (suspected)" in body
    for column in ("operation", "verdict", "change_pct", "ci95_pct", "p_adjusted", "mdc_pct", "why"):
        assert column in body, column
    assert "all operations (load mix)" in body and "informational (not gated)" in body
    assert not UNROUNDED.search(body), UNROUNDED.search(body)
    assert shot.stat().st_size > 20_000
    assert not page.errors, page.errors


@pytest.mark.slow
def test_the_plots_view_draws_p95_per_operation_across_the_builds(ui, page, tmp_path):
    open_page(page, f"{ui}/assets/k6_results")
    keys = metadata_keys(page)
    assert keys[:2] == ["build", "image"] and "p95_ms/userNode" in keys, keys
    page.get_by_role("button", name="Plots").click()
    plot = page.get_by_text("p95_ms/userNode", exact=True)
    plot.wait_for(timeout=30_000)
    plot.scroll_into_view_if_needed()
    screenshot(page, tmp_path, "k6_results_plots.png")
    body = page.inner_text("body")
    for operation in ("me", "myUser", "userNode", "permissions", "all"):
        assert f"p95_ms/{operation}" in body and f"error_rate_pct/{operation}" in body, operation
    # One chart (a canvas, partitions along its x axis) per plotted key: at least the 9 p95 plots.
    assert page.locator("canvas").count() >= 9
    assert not page.errors, page.errors


@pytest.mark.slow
def test_a_check_the_failed_run_never_got_to_says_skipped_not_execution_failed(ui, page, tmp_path):
    open_page(page, f"{ui}/assets/ab_confirmation?view=checks")
    page.get_by_text("no_regression").first.wait_for(timeout=30_000)
    # Dagster 1.13 lists a partitioned asset's check evaluations under "Execution history".
    page.get_by_text("Execution history", exact=True).first.click()
    skipped = page.get_by_text(re.compile(r"skipped: check k6_results\.no_dropped_iterations failed")).first
    skipped.wait_for(timeout=30_000)
    screenshot(page, tmp_path, "ab_confirmation_checks.png")
    body = page.inner_text("body")
    assert "Execution failed" not in body
    # The complete builds' own evaluations are there too, below the newest.
    assert body.index("skipped: check k6_results") < body.index("suspected regression of userNode")
    assert not page.errors, page.errors
