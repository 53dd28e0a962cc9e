"""`ult sandbox up|down|status`."""

from __future__ import annotations

import json

import click
import psycopg

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.postgres import EmbeddedPostgresError
from ult_pipeline.sandbox.service_process import ServiceKnobs, ServiceStartError
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.secrets import mask_dsn, scrub_db_message
from ult_pipeline.target_db import marker

_home = click.option(
    "--home", envvar="ULT_SANDBOX_HOME", default=None,
    help="State folder (default ~/.ult/sandbox; env ULT_SANDBOX_HOME).",
)


def _parse_pairs(values: tuple[str, ...], option: str) -> dict[str, float]:
    parsed: dict[str, float] = {}
    for value in values:
        op, sep, number = value.partition("=")
        try:
            parsed[op] = float(number)
        except ValueError:
            sep = ""
        if not sep or not op:
            raise click.BadParameter(f"{value!r}: expected OPERATION=NUMBER, e.g. myUser=50", param_hint=option)
    return parsed


def _settings(**kwargs) -> SandboxSettings:
    """SandboxSettings.from_env, with a bad setting (e.g. $ULT_SANDBOX_PORT=x) as a one-line error."""
    try:
        return SandboxSettings.from_env(**kwargs)
    except ValueError as err:
        raise click.ClickException(str(err)) from None


@click.group()
def sandbox() -> None:
    """The local sandbox: embedded PostgreSQL and a sandbox user-service."""


@sandbox.command()
@_home
@click.option("--port", type=int, envvar="ULT_SANDBOX_PORT", default=None, help="Service port (default 18080).")
@click.option("--latency-ms", multiple=True, metavar="OP=MS", help="Add MS ms to every OP request.")
@click.option("--latency-pct", multiple=True, metavar="OP=PCT", help="Add PCT % to every OP request.")
@click.option("--no-telemetry", multiple=True, metavar="OP", help="Leave OP out of the service's own telemetry.")
@click.option("--roster-writes", type=click.Choice(["locked", "unlocked"]), default=None,
              help="unlocked: roster writes read-modify-write without a lock, losing parallel adds as the real "
              "service 4.5.0 does (default locked).")
@click.option("--restart", is_flag=True, help="Restart the service even if it is running.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def up(home, port, latency_ms, latency_pct, no_telemetry, roster_writes, restart, as_json) -> None:
    """Start the sandbox (idempotent) and print its GraphQL URL."""
    settings = _settings(home=home, port=port)
    knobs = None
    if latency_ms or latency_pct or no_telemetry or roster_writes:
        knobs = ServiceKnobs(
            latency_ms=_parse_pairs(latency_ms, "--latency-ms"),
            latency_pct=_parse_pairs(latency_pct, "--latency-pct"),
            no_telemetry=frozenset(no_telemetry),
            roster_writes=roster_writes or "locked",
        )
        restart = True
    was_running = manager.status(settings).service_healthy
    try:
        status = manager.up(settings, knobs, restart=restart)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP (ult_pipeline.cli.signals): leave nothing half-started
        if not was_running:
            manager.down(settings)
        raise
    except (EmbeddedPostgresError, ServiceStartError) as err:
        raise click.ClickException(str(err)) from err
    except marker.DatabaseConnectError as err:  # an outside ULT_SANDBOX_DSN: already one line, masked
        raise click.ClickException(f"ULT_SANDBOX_DSN: {err}") from None
    except psycopg.Error as err:
        raise click.ClickException(f"the sandbox's database {mask_dsn(settings.external_dsn)}: "
                                   f"{scrub_db_message(str(err), settings.external_dsn or '', hide_quoted=False)}"
                                   ) from None
    if as_json:
        click.echo(json.dumps(status.to_public_json(), indent=2))
    else:
        click.echo(f"sandbox user-service: {status.url}")
        click.echo(f"postgres ({status.postgres}): {mask_dsn(status.dsn)}")
        click.echo("API key: `ult sandbox status --json` (field api_key)")


@sandbox.command()
@_home
@click.option("--purge", is_flag=True, help="Also delete the state folder (database included).")
def down(home, purge) -> None:
    """Stop what `ult sandbox up` started, and nothing else."""
    stopped = manager.down(_settings(home=home), purge=purge)
    click.echo("stopped: " + ", ".join(stopped) if stopped else "nothing was running")


@sandbox.command()
@_home
@click.option("--json", "as_json", is_flag=True,
              help="JSON with url, api_key, dsn (password masked) and more, for scripts.")
def status(home, as_json) -> None:
    """Show the sandbox's URL, health and database."""
    st = manager.status(_settings(home=home))
    if as_json:
        click.echo(json.dumps(st.to_public_json(), indent=2))
        return
    click.echo(f"service: {'healthy' if st.service_healthy else 'down'} {st.url}")
    click.echo(f"postgres ({st.postgres}): {'running' if st.postgres_running else 'stopped'} {mask_dsn(st.dsn)}")
    knobs = ServiceKnobs.from_json(st.knobs)
    if knobs != ServiceKnobs():
        # A sandbox playing a slower, blinder or lossy build says so: a test against it measures that build.
        click.echo(f"knobs: {' '.join(knobs.to_args())}")
    click.echo(f"home: {st.home}")


@sandbox.command()
@_home
@click.argument("tag")
@click.option("--latency-ms", multiple=True, metavar="OP=MS", help="The build adds MS ms to every OP request.")
@click.option("--latency-pct", multiple=True, metavar="OP=PCT", help="The build adds PCT % to every OP request.")
@click.option("--no-telemetry", multiple=True, metavar="OP", help="The build records no telemetry for OP.")
@click.option("--roster-writes", type=click.Choice(["locked", "unlocked"]), default="locked", show_default=True,
              help="unlocked: the build loses parallel roster writes, as the real service 4.5.0 does.")
def push(home, tag, latency_ms, latency_pct, no_telemetry, roster_writes) -> None:
    """Push an image TAG to the sandbox's ECR; its knobs play a slower or blinder build."""
    from ult_pipeline.sandbox import aws

    settings = _settings(home=home)
    st = manager.status(settings)
    if not st.aws_running:
        raise click.ClickException("the sandbox's AWS (moto) is not running: start it with `ult sandbox up`")
    knobs = ServiceKnobs(
        latency_ms=_parse_pairs(latency_ms, "--latency-ms"), latency_pct=_parse_pairs(latency_pct, "--latency-pct"),
        no_telemetry=frozenset(no_telemetry), roster_writes=roster_writes,
    )
    pushed = aws.push(int(st.aws_endpoint.rsplit(":", 1)[1]), tag, knobs)
    click.echo(f"pushed {aws.REPOSITORY}:{pushed['tag']} {pushed['digest']}")
