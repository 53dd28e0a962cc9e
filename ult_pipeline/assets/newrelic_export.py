"""`newrelic_export`: every run's results in New Relic, tagged with the build.

New Relic is a copy of the results, not the build's test: when it cannot be reached the asset
still materializes (the payload is stored beside the results either way) and its check
`newrelic_delivered` fails with the reason, so the load test and its verdict keep their status
and `ult newrelic send PARTITION` delivers later.
"""

import dagster as dg
import requests

from ult_pipeline.assets.presentation import build_entries
from ult_pipeline.build import Build
from ult_pipeline.newrelic import payload as nr_payload
from ult_pipeline.newrelic.transport import NewRelicError
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.newrelic import NewRelicResource
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline.secrets import first_line

NEWRELIC_DELIVERED = "newrelic_delivered"


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    ins={"k6_results": dg.AssetIn(), "ab_confirmation": dg.AssetIn()},
    check_specs=[dg.AssetCheckSpec(
        NEWRELIC_DELIVERED, asset="newrelic_export",
        description="New Relic accepted the export (passes without a key: the payload waits for `ult newrelic send`)")],
    description="Sends one UltOperationResult event per operation and one UltLoadTestRun event per run "
    "(Event API; gauges optional) tagged with image tag, digest, partition and run id. The payload is stored "
    "beside the results first; without a key, or when New Relic cannot be reached (the check "
    f"{NEWRELIC_DELIVERED} fails with the reason), `ult newrelic send PARTITION` sends it later.",
)
def newrelic_export(context: dg.AssetExecutionContext, k6_results: dict, ab_confirmation: dict,
                    newrelic: NewRelicResource, results_store: ResultsStoreResource):
    partition = context.partition_key
    # The image as the run's tags name it (set by the sensor), else as far as the partition key tells.
    build = Build.from_run(context.run.tags, partition)
    verdict = ab_confirmation["verdict"]
    common = {
        "imageTag": Build.image_tag_of_run(context.run.tags, partition),
        "imageDigest": build.digest if build is not None else "",
        "partitionKey": partition,
        "runId": context.run.run_id,
    }
    payload = nr_payload.build_payload(k6_results, common, verdict=verdict, with_metrics=newrelic.send_metrics)
    folder = results_store.partition_dir(partition)
    path = nr_payload.store(folder, payload)
    summary = {**build_entries(partition, context.run.tags), "events": len(payload["events"]), "metrics": len(payload["metrics"]),
               "payload": dg.MetadataValue.path(str(path))}
    later = f"`ult newrelic send {partition}`"
    if not newrelic.configured:
        context.log.info(f"no New Relic key configured: payload stored for {later}")
        return dg.MaterializeResult(
            metadata={**summary, "status": "skipped: no New Relic key"},
            check_results=[dg.AssetCheckResult(
                check_name=NEWRELIC_DELIVERED, passed=True, metadata={"status": "skipped: no New Relic key"},
                description=f"no New Relic key configured: payload stored for {later}")],
        )
    try:
        with newrelic.client() as client:
            # A retry days later re-stamps what New Relic would drop for its age (`fit_time_window`).
            reports, fit = nr_payload.send(client, payload, folder)
    except (NewRelicError, requests.RequestException) as err:
        # The client has retried already; its messages never carry the key.
        reason = first_line(err)
        context.log.warning(f"New Relic did not take the export (payload kept for {later}): {reason}")
        return dg.MaterializeResult(
            metadata={**summary, "status": f"not sent: {reason}", "region": newrelic.region},
            check_results=[dg.AssetCheckResult(
                check_name=NEWRELIC_DELIVERED, passed=False, severity=dg.AssetCheckSeverity.WARN,
                metadata={"reason": reason, "send_later": later},
                description=f"not delivered to New Relic: {reason} (send later with {later})")],
        )
    return dg.MaterializeResult(
        metadata={
            **summary, "status": f"sent; {fit.line()}" if fit.line() else "sent", "region": newrelic.region,
            "account_id": newrelic.account_id,
            "batches": sum(r.batches for r in reports.values()), "attempts": sum(r.attempts for r in reports.values()),
            "bytes_sent": sum(r.bytes_sent for r in reports.values()),
        },
        check_results=[dg.AssetCheckResult(check_name=NEWRELIC_DELIVERED, passed=True,
                                           metadata={"events": reports["events"].events})],
    )
