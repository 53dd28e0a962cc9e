"""`ult newrelic send PARTITION`: deliver an export that was stored because no key was set."""

from __future__ import annotations

import os

import click

from ult_pipeline.analysis.history_store import safe_key
from ult_pipeline.cli.data import results_dir
from ult_pipeline.newrelic import payload as nr_payload
from ult_pipeline.newrelic.ingest import NewRelicClient
from ult_pipeline.newrelic.transport import NewRelicEndpoints, NewRelicError
from ult_pipeline.settings import setting


@click.group()
def newrelic() -> None:
    """New Relic exports."""


@newrelic.command()
@click.argument("partition")
@click.option("--region", default=lambda: setting(os.environ, "ULT_NEWRELIC_REGION"), show_default="US")
@click.option("--endpoint", envvar="ULT_NEWRELIC_ENDPOINT", default=None,
              help="A local server speaking New Relic's protocol (tests; env ULT_NEWRELIC_ENDPOINT).")
@click.option("--stale", type=click.Choice([nr_payload.RESTAMP, nr_payload.REFUSE]), default=nr_payload.RESTAMP,
              show_default=True,
              help="Events older than New Relic keeps (24 h; metrics 48 h): stamp them with the sending time, their "
              "own time kept in runTimestamp, or refuse to send.")
def send(partition: str, region: str, endpoint: str | None, stale: str) -> None:
    """Send the stored payload of build PARTITION (key: $ULT_NEWRELIC_LICENSE_KEY, account: $ULT_NEWRELIC_ACCOUNT_ID)."""
    key = setting(os.environ, "ULT_NEWRELIC_LICENSE_KEY") or ""
    account = setting(os.environ, "ULT_NEWRELIC_ACCOUNT_ID") or ""
    if not key or not account.isdigit() or int(account) == 0:
        raise click.ClickException("set ULT_NEWRELIC_LICENSE_KEY (an ingest key) and ULT_NEWRELIC_ACCOUNT_ID")
    if not partition.strip():
        raise click.BadParameter("is empty: give a build's partition key", param_hint="PARTITION")
    # Not partition_dir(), which would create a folder for a mistyped key.
    folder = results_dir() / safe_key(partition)
    try:
        payload = nr_payload.load(folder)
        endpoints = NewRelicEndpoints.local(endpoint) if endpoint else NewRelicEndpoints.for_region(region)
        with NewRelicClient(int(account), key, endpoints) as client:
            reports, fit = nr_payload.send(client, payload, folder, stale=stale)
    except (FileNotFoundError, NewRelicError, ValueError) as err:  # StalePayloadError is a ValueError
        raise click.ClickException(str(err)) from None
    click.echo(f"sent {reports['events'].events} events in {reports['events'].batches} batch(es)"
               + (f", {reports['metrics'].events} metrics" if "metrics" in reports else ""))
    if fit.line():
        click.echo(fit.line())
