"""`ult target-db mark`: the deliberate, one-time marking of a load-test database."""

from __future__ import annotations

import getpass

import click
import psycopg

from ult_pipeline.target_db import marker


@click.group("target-db")
def target_db() -> None:
    """The target's PostgreSQL database."""


@target_db.command()
@click.option("--dsn", required=True, envvar="ULT_TARGET_DSN", help="Database to mark (env ULT_TARGET_DSN).")
@click.option("--environment", required=True, help="Name of the load-test environment it belongs to.")
def mark(dsn: str, environment: str) -> None:
    """Mark a database as a load-test database that `ult wipe` and the pipeline may wipe."""
    try:
        m = marker.mark(dsn, environment, marked_by=f"ult target-db mark ({getpass.getuser()})")
    except psycopg.OperationalError as err:
        raise click.ClickException(f"cannot connect to the database: {err}") from err
    click.echo(f"marked: environment {m.environment!r} at {m.marked_at:%Y-%m-%d %H:%M:%S %Z} by {m.marked_by}")


@target_db.command()
@click.option("--dsn", required=True, envvar="ULT_TARGET_DSN", help="Database to inspect (env ULT_TARGET_DSN).")
def show(dsn: str) -> None:
    """Show the database's load-test marker."""
    with psycopg.connect(dsn) as conn:
        m = marker.read(conn)
    click.echo("no load-test marker" if m is None else f"environment {m.environment!r}, marked {m.marked_at} by {m.marked_by}")
