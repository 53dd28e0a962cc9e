"""`ult target-db mark`: the deliberate, one-time marking of a load-test database."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import click
import psycopg

from ult_pipeline.secrets import mask_dsn, scrub_db_message
from ult_pipeline.target_db import marker


@contextmanager
def _one_line_errors(dsn: str) -> Iterator[None]:
    """Database failures as one-line click errors: no traceback, no password (libpq quotes DSNs)."""
    try:
        yield
    except marker.DatabaseConnectError as err:
        raise click.ClickException(str(err)) from None
    except psycopg.Error as err:
        # Connected, then the server refused something (permissions, read-only, ...).
        raise click.ClickException(
            f"database {mask_dsn(dsn)}: {scrub_db_message(str(err), dsn, hide_quoted=False) or type(err).__name__}") from None
    except ValueError as err:
        raise click.ClickException(str(err)) from None


@click.group("target-db")
def target_db() -> None:
    """The target's PostgreSQL database."""


@target_db.command()
@click.option("--dsn", required=True, envvar="ULT_TARGET_DSN", help="Database to mark (env ULT_TARGET_DSN).")
@click.option("--environment", required=True, help="Name of the load-test environment it belongs to.")
def mark(dsn: str, environment: str) -> None:
    """Mark a database as a load-test database that `ult wipe` and the pipeline may wipe."""
    with _one_line_errors(dsn):
        m = marker.mark(dsn, environment, marked_by=f"ult target-db mark ({getpass.getuser()})")
    click.echo(f"marked: environment {m.environment!r} at {m.marked_at:%Y-%m-%d %H:%M:%S %Z} by {m.marked_by}")


@target_db.command()
@click.option("--dsn", required=True, envvar="ULT_TARGET_DSN", help="Database to inspect (env ULT_TARGET_DSN).")
def show(dsn: str) -> None:
    """Show the database's load-test marker."""
    with _one_line_errors(dsn), marker.connect(dsn) as conn:
        m = marker.read(conn)
    click.echo("no load-test marker" if m is None else f"environment {m.environment!r}, marked {m.marked_at} by {m.marked_by}")
