"""`ult`: the pipeline's command line, for people and scripts."""

from __future__ import annotations

import logging

import click

from ult_pipeline.cli.analyze import analyze_command
from ult_pipeline.cli.data import seed, wipe_command
from ult_pipeline.cli.demo import demo
from ult_pipeline.cli.newrelic import newrelic
from ult_pipeline.cli.run import run_command
from ult_pipeline.cli.sandbox import sandbox
from ult_pipeline.cli.signals import Stopped, stop_on_signals
from ult_pipeline.cli.target_db import target_db


class StoppableGroup(click.Group):
    """A group whose every command stops cleanly on SIGINT, SIGTERM and SIGHUP.

    The signal raises `Stopped` inside the command, whose own cleanup runs (k6 stopped, partial
    results ingested, the demo's processes stopped); the command then exits 128 + signum
    (130 SIGINT, 143 SIGTERM, 129 SIGHUP) instead of click's "Aborted!" with exit code 1.
    """

    def invoke(self, ctx: click.Context):
        try:
            # The command's cleanup runs inside the block, where a repeated signal cannot cut it short.
            with stop_on_signals():
                return super().invoke(ctx)
        except Stopped as stop:
            click.echo(f"{stop}; exit code {stop.exit_code}", err=True)
            raise click.exceptions.Exit(stop.exit_code) from None


@click.group(cls=StoppableGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug lines.")
def cli(verbose: bool) -> None:
    """ult-pipeline: load tests of the KidsLoop user-service."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


cli.add_command(sandbox)
cli.add_command(target_db)
cli.add_command(seed)
cli.add_command(wipe_command)
cli.add_command(run_command)
cli.add_command(demo)
cli.add_command(analyze_command)
cli.add_command(newrelic)

