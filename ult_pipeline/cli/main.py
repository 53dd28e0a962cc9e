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
from ult_pipeline.cli.target_db import target_db


@click.group()
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

