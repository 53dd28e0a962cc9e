"""`ult seed` and `ult wipe`: data for people who want it without Dagster."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES, get_profile
from ult_pipeline.seeding.run import prepare
from ult_pipeline.seeding.seeder import SeedingError
from ult_pipeline.target_api.client import GraphQLCallError, GraphQLClient, TransportError
from ult_pipeline.target_db.marker import MarkerError
from ult_pipeline.target_db.wipe import IN_PLACE, RECREATE, STRATEGIES, WipeError, wipe

API_KEY_ENV = "ULT_TARGET_API_KEY"


def results_dir() -> Path:
    return Path(os.environ.get("ULT_RESULTS_DIR", "~/.ult/results")).expanduser()


def sandbox_target(home: str | None = None):
    """The running sandbox as a target: (url, api_key, dsn, settings), or a clear error."""
    settings = SandboxSettings.from_env(home=home)
    status = manager.status(settings)
    if not status.service_healthy:
        raise click.ClickException(
            "no --target given and the sandbox is not running: start it with `ult sandbox up`, "
            f"or name a target with --target URL (API key in ${API_KEY_ENV})"
        )
    return status.url, status.api_key, status.dsn, settings


def make_wipe(dsn: str | None, environment: str, strategy: str, sandbox_settings: SandboxSettings | None, sql_file):
    if dsn is None:
        return None
    restart = None
    if strategy == RECREATE and sandbox_settings is not None:
        def restart():
            manager.restart_service(sandbox_settings)
    return lambda: wipe(dsn, environment, strategy=strategy, sql_file=sql_file, restart_service=restart,
                        db_schema=sandbox_settings.db_schema if sandbox_settings else "public")


USER_ERRORS = (MarkerError, WipeError, SeedingError, GraphQLCallError, TransportError, ValueError)


@click.command()
@click.option("--target", default=None, help="GraphQL URL of the target (default: the running sandbox).")
@click.option("--profile", default="tiny", show_default=True, type=click.Choice(sorted(PROFILES)))
@click.option("--seed", "seed", default=1, show_default=True, type=int, help="Random seed of the dataset.")
@click.option("--dsn", default=None, envvar="ULT_TARGET_DSN", help="Target database, wiped first (env ULT_TARGET_DSN).")
@click.option("--environment", default=None, help="Load-test environment name the database must be marked with.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help="Wipe strategy (sandbox: recreate; other targets: in_place).")
@click.option("--no-wipe", is_flag=True, help="Do not wipe: seed a fresh, uniquely named dataset beside existing data.")
@click.option("--concurrency", default=4, show_default=True, type=int, help="API calls in flight at once.")
@click.option("--identities", "identities_path", type=click.Path(path_type=Path), default=None,
              help="Where to write the identities file for k6.")
def seed(target, profile, seed, dsn, environment, strategy, no_wipe, concurrency, identities_path) -> None:
    """Wipe the target's database (guarded) and seed a known dataset through its GraphQL API."""
    sandbox_settings = None
    if target is None:
        target, api_key, sandbox_dsn, sandbox_settings = sandbox_target()
        dsn = dsn or sandbox_dsn
        environment = environment or sandbox_settings.environment
        strategy = strategy or RECREATE
    else:
        api_key = os.environ.get(API_KEY_ENV)
        if not api_key:
            raise click.ClickException(f"set ${API_KEY_ENV} to the target's API key (it is never taken on the command line)")
        strategy = strategy or IN_PLACE
    if no_wipe:
        dsn = None
    elif dsn is None:
        raise click.ClickException("give --dsn (and --environment) to wipe the target first, or --no-wipe to seed beside existing data")
    elif environment is None:
        raise click.ClickException("--environment is required with --dsn: the database must be marked for it")
    namespace = secrets.token_hex(3) if no_wipe else ""
    dataset = generate(get_profile(profile), seed, namespace=namespace)
    identities_path = identities_path or results_dir() / "identities.json"
    client = GraphQLClient(target, api_key=api_key)
    try:
        prepared = prepare(
            client=client, dataset=dataset, signer=TokenSigner(), identities_path=identities_path,
            wipe=make_wipe(dsn, environment, strategy, sandbox_settings, None), concurrency=concurrency, log=click.echo,
        )
    except USER_ERRORS as err:
        raise click.ClickException(str(err)) from None
    finally:
        client.close()
    click.echo(f"profile {prepared.profile}, seed {prepared.seed}{', namespace ' + namespace if namespace else ''}")
    click.echo(f"content hash {prepared.dataset_hash}")
    click.echo("counts " + ", ".join(f"{k} {v}" for k, v in prepared.actual_counts.items()))
    click.echo(f"{prepared.seeding.calls} API calls, {prepared.seeding.calls_per_second:.0f} calls/s, {prepared.seconds:.2f} s in all")
    click.echo(f"identities ({prepared.identities}): {prepared.identities_path}")
    if not prepared.counts_match:
        raise click.ClickException(f"counts read back {prepared.actual_counts} differ from the profile's {prepared.expected_counts}")


@click.command("wipe")
@click.option("--dsn", required=True, envvar="ULT_TARGET_DSN", help="Target database (env ULT_TARGET_DSN).")
@click.option("--environment", required=True, help="Load-test environment name the database must be marked with.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=IN_PLACE, show_default=True,
              help="recreate needs the service restarted afterwards (only done for the sandbox).")
@click.option("--sql-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="SQL of the in_place wipe (default: the shipped user-service script).")
@click.option("--schema", "db_schema", default="public", show_default=True, help="The service's schema.")
def wipe_command(dsn, environment, strategy, sql_file, db_schema) -> None:
    """Wipe a load-test database; refuses unless it carries the marker for ENVIRONMENT."""
    restart = None
    if strategy == RECREATE:
        settings = SandboxSettings.from_env()
        if manager.status(settings).dsn != dsn:
            raise click.ClickException(
                "the recreate wipe restarts the service afterwards, which `ult wipe` can only do for the sandbox; "
                "use --strategy in_place for other targets"
            )
        def restart():
            manager.restart_service(settings)
    try:
        result = wipe(dsn, environment, strategy=strategy, sql_file=sql_file, db_schema=db_schema, restart_service=restart)
    except (MarkerError, WipeError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wiped ({result.strategy}, environment {result.environment}) in {result.seconds:.2f} s")
