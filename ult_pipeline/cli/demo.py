"""`ult demo`: the project's main job."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ult_pipeline.cli.signals import Stopped
from ult_pipeline.demo.run import DemoOptions, run_demo
from ult_pipeline.processes import processes_mentioning, stop_processes
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.settings import setting


@click.command()
@click.option("--duration", default="60s", show_default=True,
              help="k6 duration of each build's load test. Longer: a smaller change stands out from the noise, and "
              "a longer demo (with --profile tiny about 7 minutes at 60s, 9 at 90s). Measured on a busy 2-core machine "
              "(bench/demo_duration.py): at 30s the +30 % step on userNode was hidden (the run could only see "
              "changes above 67 %); at 60s it was seen every time (above 8 % with other work running; 43 % "
              "under a load of 8), 90s saw no smaller change than 60s.")
@click.option("--profile", "dataset_profile", default="standard", show_default=True, help="Dataset profile.")
@click.option("--home", type=click.Path(path_type=Path), default=None,
              help="Demo state (default ~/.ult/demo; env ULT_DEMO_HOME). Deleted at start only if an earlier "
              "`ult demo` made it (it carries .ult-demo-home); an empty folder is used; anything else is refused.")
@click.option("--ui-port", type=int, default=18300, show_default=True)
@click.option("--service-port", type=int, default=18180, show_default=True)
@click.option("--aws-port", type=int, default=18580, show_default=True)
@click.option("--report-port", type=int, default=18380, show_default=True,
              help="Serves the results folder (trend report, each build's files) on 127.0.0.1 for the UI's links.")
@click.option("--keep-running", is_flag=True, help="Keep the UI and sandbox up after the last build, until Ctrl-C.")
@click.option("--run-timeout", type=float, default=900, show_default=True, help="Seconds to wait for each build's run.")
@click.option("--confirm", is_flag=True,
              help="Re-run suspected regressions A,B,A,B as production does (about 4 more minutes per re-run).")
@click.option("--writes", is_flag=True,
              help="Also run the write tests on every build (ULT_WRITE_TESTS=all: admin_writes, roster_contention); "
              "v1.0.2 is pushed losing parallel roster writes (as the real 4.5.0), so its no_lost_writes check fails. "
              "Each build takes about 100 s more (12 minutes in all instead of 5 at the defaults).")
def demo(duration, dataset_profile, home, ui_port, service_port, aws_port, report_port, keep_running, run_timeout,
         confirm, writes) -> None:
    """Sandbox + Dagster: push four images, let the sensor test each, print a summary."""
    home = (home or Path(setting(os.environ, "ULT_DEMO_HOME"))).expanduser().resolve()
    options = DemoOptions(home=home, service_port=service_port, aws_port=aws_port, ui_port=ui_port, duration=duration,
                          dataset_profile=dataset_profile, keep_running=keep_running, run_timeout_s=run_timeout,
                          confirm=confirm, report_port=report_port, writes=writes)
    try:
        code = run_demo(options, click.echo)
    except KeyboardInterrupt as stop:  # `Stopped` by SIGINT/SIGTERM/SIGHUP (ult_pipeline.cli.signals)
        # run_demo's own cleanup covers what it started inside its try; a stop while the sandbox or
        # Dagster was still starting leaves processes it never learnt about.
        _stop_leftovers(options)
        click.echo("interrupted; everything the demo started is stopped")
        if isinstance(stop, Stopped):
            raise  # the `ult` group exits 128 + the signal's number
        code = 130
    sys.exit(code)


def _stop_leftovers(options: DemoOptions) -> None:
    """Stops the demo's sandbox (by its state) and every process that still names the demo's home
    (Dagster's processes carry DAGSTER_HOME under it, PostgreSQL its data folder, the report server
    `--directory <home>/results`)."""
    # The same settings run_demo builds: the sandbox lives in <home>/sandbox.
    manager.down(SandboxSettings(home=options.home / "sandbox", port=options.service_port, external_dsn=None,
                                 aws_port=options.aws_port))
    # With the separator: <home>2 is not ours.
    stop_processes(processes_mentioning(str(options.home) + os.sep))
