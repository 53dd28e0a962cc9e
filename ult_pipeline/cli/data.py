"""`ult seed` and `ult wipe`: data for people who want it without Dagster."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import click

from ult_pipeline.secrets import mask_dsn
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES, get_profile
from ult_pipeline.seeding.run import prepare
from ult_pipeline.seeding.seeder import DEFAULT_CONCURRENCY, SeedingError
from ult_pipeline.settings import setting
from ult_pipeline.target_api.client import GraphQLCallError, GraphQLClient, TransportError
from ult_pipeline.target_db.marker import MarkerError
from ult_pipeline.target_db.wipe import IN_PLACE, RECREATE, STRATEGIES, TargetCheck, WipeError, wipe

API_KEY_ENV = "ULT_TARGET_API_KEY"


def results_dir() -> Path:
    return Path(setting(os.environ, "ULT_RESULTS_DIR")).expanduser()


def sandbox_target(home: str | None = None):
    """The running sandbox as a target: (url, api_key, dsn, settings), or a clear error."""
    from ult_pipeline.sandbox import manager  # the sandbox extra: only when no --target is given
    from ult_pipeline.sandbox.settings import SandboxSettings

    try:
        settings = SandboxSettings.from_env(home=home)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    status = manager.status(settings)
    if not status.service_healthy:
        raise click.ClickException(
            "no --target given and the sandbox is not running: start it with `ult sandbox up`, "
            f"or name a target with --target URL (API key in ${API_KEY_ENV})"
        )
    return status.url, status.api_key, status.dsn, settings


def make_wipe(dsn: str | None, environment: str, strategy: str, sandbox_settings, sql_file,
              client: GraphQLClient):
    """The guarded wipe of ``dsn``, proven to be the database behind ``client``'s target (None: no wipe)."""
    if dsn is None:
        return None
    restart = None
    if strategy == RECREATE and sandbox_settings is not None:
        def restart():
            from ult_pipeline.sandbox import manager

            manager.restart_service(sandbox_settings)
    return lambda: wipe(dsn, environment, strategy=strategy, sql_file=sql_file, restart_service=restart, log=click.echo,
                        db_schema=sandbox_settings.db_schema if sandbox_settings else "public",
                        behind=TargetCheck.through(client))


def dsn_origin(ctx: click.Context, dsn: str | None, sandbox_dsn: str | None = None) -> str:
    """Where the DSN in use came from, said in words: an environment variable never pairs silently."""
    source = ctx.get_parameter_source("dsn")
    if dsn is None:
        return "none"
    if source == click.core.ParameterSource.ENVIRONMENT:
        return "$ULT_TARGET_DSN"
    if source == click.core.ParameterSource.COMMANDLINE:
        return "--dsn"
    return "the sandbox" if dsn == sandbox_dsn else "the default"


def say_database(ctx: click.Context, dsn: str | None, sandbox_dsn: str | None = None) -> None:
    if dsn is not None:
        click.echo(f"database: {mask_dsn(dsn)} (from {dsn_origin(ctx, dsn, sandbox_dsn)})")


def writable_file(path: Path, what: str) -> Path:
    """``path`` if a file can be written there (its folder made if needed), else a one-line ClickException.

    Checked before anything is wiped, so a bad path never costs the target's data.
    """
    path = path.expanduser()
    if path.is_dir():
        raise click.ClickException(f"{what} {path} is a folder; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise click.ClickException(f"cannot create the folder of the {what} {path}: {err.strerror}") from None
    try:
        # A real probe: os.access says yes to root on read-only file systems such as /sys.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.probe."):
            pass
    except OSError as err:
        raise click.ClickException(f"cannot write the {what} {path}: {err.strerror}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise click.ClickException(f"cannot write the {what} {path}: permission denied")
    return path


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
@click.option("--concurrency", default=DEFAULT_CONCURRENCY, show_default=True, type=click.IntRange(min=1), help="API calls in flight at once.")
@click.option("--identities", "identities_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to write the identities file for k6.")
@click.pass_context
def seed(ctx, target, profile, seed, dsn, environment, strategy, no_wipe, concurrency, identities_path) -> None:
    """Wipe the target's database (guarded) and seed a known dataset through its GraphQL API.

    The wipe first proves that the database is the one behind the target (its system role ids
    are the ones the target's API reports) and refuses, changing nothing, when it is not.
    Every option is checked before anything is wiped.
    """
    sandbox_settings = sandbox_dsn = None
    if target is None:
        target, api_key, sandbox_dsn, sandbox_settings = sandbox_target()
        dsn = dsn or sandbox_dsn
        environment = environment or sandbox_settings.environment
        strategy = strategy or RECREATE
    else:
        api_key = setting(os.environ, API_KEY_ENV)
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
    identities_path = writable_file(identities_path or results_dir() / "identities.json", "identities file")
    say_database(ctx, dsn, sandbox_dsn)
    client = GraphQLClient(target, api_key=api_key)
    try:
        prepared = prepare(
            client=client, dataset=dataset, signer=TokenSigner(), identities_path=identities_path,
            wipe=make_wipe(dsn, environment, strategy, sandbox_settings, None, client), concurrency=concurrency,
            log=click.echo,
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
              help="SQL of the in_place wipe (default: the TRUNCATE plan of target_db/in_place.py, with its fallbacks).")
@click.option("--schema", "db_schema", default="public", show_default=True, help="The service's schema.")
@click.option("--target", default=None,
              help="GraphQL URL of the service on this database (API key in $ULT_TARGET_API_KEY): the wipe then "
              "proves the database is the one behind it. The sandbox's recreate wipe always proves it.")
@click.pass_context
def wipe_command(ctx, dsn, environment, strategy, sql_file, db_schema, target) -> None:
    """Wipe a load-test database; refuses unless it carries the marker for ENVIRONMENT (and, with
    --target, unless it is the database behind that target). A schema that does not exist is refused."""
    restart = None
    client = None
    if strategy == RECREATE:
        from ult_pipeline.sandbox import manager
        from ult_pipeline.sandbox.settings import SandboxSettings

        try:
            settings = SandboxSettings.from_env()
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        status = manager.status(settings)
        if status.dsn != dsn:
            raise click.ClickException(
                "the recreate wipe restarts the service afterwards, which `ult wipe` can only do for the sandbox; "
                "use --strategy in_place for other targets"
            )
        def restart():
            manager.restart_service(settings)
        if target is None and status.service_healthy:
            client = GraphQLClient(status.url, api_key=status.api_key)
    if target is not None:
        api_key = setting(os.environ, API_KEY_ENV)
        if not api_key:
            raise click.ClickException(f"set ${API_KEY_ENV} to the target's API key to prove the database behind --target")
        client = GraphQLClient(target, api_key=api_key)
    say_database(ctx, dsn)
    try:
        result = wipe(dsn, environment, strategy=strategy, sql_file=sql_file, db_schema=db_schema, restart_service=restart, log=click.echo,
                      behind=TargetCheck.through(client) if client is not None else None)
    except (MarkerError, WipeError, GraphQLCallError, TransportError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        if client is not None:
            client.close()
    click.echo(f"wiped ({result.strategy}, environment {result.environment}) in {result.seconds:.2f} s"
               + ("" if client is not None else " (on the marker alone: no --target to prove it is the target's)"))
