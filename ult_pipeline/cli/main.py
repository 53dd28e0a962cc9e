"""`ult`: the pipeline's command line, for people and scripts.

Subcommands are imported on demand (click's "lazy group" pattern): `ult analyze` must not pay
for Dagster, boto3 or plotly, which the other commands import. `ult --help` lists them from
the summaries below without importing any; `ult_pipeline_tests/cli/test_cli_startup.py` checks
the summaries still match the commands' own help.
"""

from __future__ import annotations

import importlib
import logging

import click

from ult_pipeline.cli.signals import Stopped, stop_on_signals

# name -> ("module:attribute", the first paragraph of the command's help, as `ult --help` shows it).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("ult_pipeline.cli.analyze:analyze_command",
                "Exit 0: no confirmed regression; 1: a confirmed regression; 2: bad input (one line on stderr "
                "says what)."),
    "demo": ("ult_pipeline.cli.demo:demo",
             "Sandbox + Dagster: push four images, let the sensor test each, print a summary."),
    "newrelic": ("ult_pipeline.cli.newrelic:newrelic", "New Relic exports."),
    "run": ("ult_pipeline.cli.run:run_command", "Wipe (guarded), seed, run k6 and print the per-operation table."),
    "sandbox": ("ult_pipeline.cli.sandbox:sandbox",
                "The local sandbox: embedded PostgreSQL and a sandbox user-service."),
    "seed": ("ult_pipeline.cli.data:seed",
             "Wipe the target's database (guarded) and seed a known dataset through its GraphQL API."),
    "target-db": ("ult_pipeline.cli.target_db:target_db", "The target's PostgreSQL database."),
    "wipe": ("ult_pipeline.cli.data:wipe_command",
             "Wipe a load-test database; refuses unless it carries the marker for ENVIRONMENT (and, with "
             "--target, unless it is the database behind that target). A schema that does not exist is refused."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when one is run (or its own --help shown).

    `lazy_subcommands`: name -> (import path "module:attribute", summary for the group's --help).
    """

    def __init__(self, *args, lazy_subcommands: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_subcommands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        import_path, _ = self.lazy_subcommands[cmd_name]
        module_name, _, attribute = import_path.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{import_path} is a {type(command).__name__}, not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click's own listing, which would import every subcommand for its one-line help: the
        # ones not imported yet are listed from their summaries (same text, same shortening).
        commands = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=self.lazy_subcommands[name][1])
            if not command.hidden:
                commands.append((name, command))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])


class StoppableGroup(LazyGroup):
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


@click.group(cls=StoppableGroup, lazy_subcommands=LAZY_COMMANDS)
@click.option("-v", "--verbose", is_flag=True, help="Log debug lines.")
def cli(verbose: bool) -> None:
    """ult-pipeline: load tests of the KidsLoop user-service."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
