"""`ult run`: one load test from a laptop, no Dagster needed."""

from __future__ import annotations

import os
import secrets
import sys
import time

import click

from ult_pipeline.cli.data import (
    API_KEY_ENV,
    USER_ERRORS,
    make_wipe,
    results_dir,
    sandbox_target,
    say_database,
    writable_file,
)
from ult_pipeline.loadtest.ingest import IngestError
from ult_pipeline.loadtest.profiles import (
    CONTENTION_WRITERS_RANGE,
    DEFAULT_ADMIN_WRITES_RATE,
    DEFAULT_CONTENTION_RATE,
    DEFAULT_CONTENTION_WRITERS,
    LOAD_PROFILES,
    SCENARIOS,
    get_load_profile,
)
from ult_pipeline.loadtest.run import run_load_test
from ult_pipeline.loadtest.runner import K6Error, K6Runner
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES, get_profile
from ult_pipeline.seeding.run import prepare
from ult_pipeline.settings import setting
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.wipe import IN_PLACE, RECREATE

# Latencies (p50..max) are of the successful requests (nan: none succeeded); failed_p50 is of the failed ones.
_COLUMNS = ["count", "rate", "error_rate", "p50", "p90", "p95", "p99", "max", "failed_p50", "check_pass_rate"]


@click.command("run")
@click.option("--target", default=None, help="GraphQL URL (default: the running sandbox); API key in $ULT_TARGET_API_KEY.")
@click.option("--profile", default="tiny", show_default=True, type=click.Choice(sorted(PROFILES)), help="Dataset profile.")
@click.option("--seed", "seed", default=1, show_default=True, type=int)
@click.option("--load", "load_profile", default="default", show_default=True, type=click.Choice(sorted(LOAD_PROFILES)))
@click.option("--duration", default="1m", show_default=True, help="Test duration above 0, e.g. 30s, 10m, 1m30s.")
@click.option("--rate", type=float, default=None,
              help="Iterations per second, a whole number of at least 1 (default 22): k6's constant-arrival-rate "
              "runs with timeUnit 1s, so a fractional rate such as 2.5 is refused before anything runs.")
@click.option("--scenario", type=click.Choice(SCENARIOS), default=None,
              help="Default: student_landing. admin_writes: an administrator's writes (9 mutations per iteration, "
              f"default {DEFAULT_ADMIN_WRITES_RATE} iterations/s). "
              f"roster_contention: per round one new class and --writers parallel one-student adds to it (default "
              f"{DEFAULT_CONTENTION_RATE} rounds/s), then every acknowledged add is looked for on the rosters: "
              "a lost write prints `lost writes: N of M acknowledged (class ...)` and exits 1.")
@click.option("--writers", type=click.IntRange(*CONTENTION_WRITERS_RANGE), default=DEFAULT_CONTENTION_WRITERS,
              show_default=True, help="roster_contention: parallel adds per round (ULT_CONTENTION_WRITERS).")
@click.option("--admin-writes-weight", type=click.IntRange(min=0), default=None,
              help="mixed: weight of admin_writes beside students 80 and teachers 20 (default 0: read-only).")
@click.option("--dsn", default=None, envvar="ULT_TARGET_DSN", help="Target database to wipe first (env ULT_TARGET_DSN).")
@click.option("--environment", default=None, help="Load-test environment the database is marked with.")
@click.option("--no-wipe", is_flag=True, help="Seed a fresh, uniquely named dataset beside the existing data.")
@click.pass_context
def run_command(ctx, target, profile, seed, load_profile, duration, rate, scenario, writers, admin_writes_weight, dsn,
                environment, no_wipe) -> None:
    """Wipe (guarded), seed, run k6 and print the per-operation table.

    Every option is checked before the wipe; the wipe proves the database is the one behind
    the target and refuses, changing nothing, when it is not.

    Exit codes: 0 done; 99 a k6 threshold was crossed; 1 an error, or (roster_contention) a lost write:
    an add the service acknowledged that is missing from the class's roster read back afterwards, a
    finding about the service, printed as `lost writes: N of M acknowledged (class ...)` (the details in
    contention.json beside the samples). Lost writes take precedence over thresholds.
    """
    sandbox_settings = sandbox_dsn = None
    if target is None:
        target, api_key, sandbox_dsn, sandbox_settings = sandbox_target()
        dsn, environment, strategy = dsn or sandbox_dsn, environment or sandbox_settings.environment, RECREATE
    else:
        api_key = setting(os.environ, API_KEY_ENV) or ""
        if not api_key:
            raise click.ClickException(f"set ${API_KEY_ENV} to the target's API key")
        strategy = IN_PLACE
    if no_wipe:
        dsn = None
    elif dsn is None or environment is None:
        raise click.ClickException("give --dsn and --environment to wipe the target first, or --no-wipe")
    try:
        if scenario == "roster_contention" and rate is None:
            rate = DEFAULT_CONTENTION_RATE  # rounds per second: each one is a burst of --writers adds
        if scenario == "admin_writes" and rate is None:
            rate = DEFAULT_ADMIN_WRITES_RATE
        load = get_load_profile(load_profile).with_overrides(duration=duration, rate=rate, scenario=scenario,
                                                             contention_writers=writers,
                                                             admin_writes_weight=admin_writes_weight)
    except ValueError as err:
        raise click.ClickException(str(err)) from None

    run_dir = results_dir() / "runs" / time.strftime("%Y%m%d-%H%M%S")
    identities_path = writable_file(run_dir / "identities.json", "identities file")
    dataset = generate(get_profile(profile), seed, namespace=secrets.token_hex(3) if no_wipe else "")
    say_database(ctx, dsn, sandbox_dsn)
    client = GraphQLClient(target, api_key=api_key)
    try:
        prepared = prepare(
            client=client, dataset=dataset, signer=TokenSigner(), identities_path=identities_path,
            wipe=make_wipe(dsn, environment, strategy, sandbox_settings, None, client), log=click.echo,
        )
        click.echo(f"k6: {load.scenario} at {load.rate:g} iterations/s for {load.duration} against {target}")
        result = run_load_test(
            runner=K6Runner(), target_url=target, identities_path=prepared.identities_path, profile=load,
            out_dir=run_dir / "k6", dataset_hash=prepared.dataset_hash, log=click.echo,
            contention_client=client if load.scenario == "roster_contention" else None,
        )
    except (*USER_ERRORS, K6Error, IngestError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        client.close()

    table = result.operations.set_index("operation")[_COLUMNS]
    click.echo(table.to_string(float_format=lambda v: f"{v:.3f}"))
    click.echo(
        f"achieved {result.achieved_rate:.2f} of {result.target_rate:g} iterations/s, "
        f"{result.ingested.dropped_iterations} dropped; error rate {result.totals()['error_rate']:.4f}"
    )
    if result.writes:
        click.echo("writes (acknowledged requests / rows written): " + ", ".join(
            f"{op} {w['acknowledged']}/{w['rows']}" for op, w in result.writes.items()))
    errors = {op: codes for op, codes in result.errors.items() if codes}
    if errors:
        click.echo("errors by code: " + "; ".join(
            f"{op}: " + ", ".join(f"{code} {n}" for code, n in codes.items()) for op, codes in errors.items()))
    click.echo(f"files: {run_dir}")
    if result.contention is not None:
        click.echo(result.contention.line(), err=not result.contention.ok)
        if not result.contention.ok:
            sys.exit(1)
    if result.k6.thresholds_crossed:
        click.echo("thresholds crossed: " + ", ".join(
            f"{m} {e}" for m, exprs in result.k6.thresholds().items() for e, held in exprs.items() if not held
        ), err=True)
        sys.exit(99)
