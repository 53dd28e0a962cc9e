"""`newrelic_export`: every run's results in New Relic, tagged with the build."""

import dagster as dg

from ult_pipeline.analysis.pipeline_history import latest_metadata
from ult_pipeline.assets.target_deployment import TAG_DIGEST, TAG_IMAGE
from ult_pipeline.newrelic import payload as nr_payload
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.newrelic import NewRelicResource
from ult_pipeline.resources.target import ResultsStoreResource


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    ins={"k6_results": dg.AssetIn(), "ab_confirmation": dg.AssetIn()},
    description="Sends one UltOperationResult event per operation and one UltLoadTestRun event per run "
    "(Event API; gauges optional) tagged with image tag, digest, partition and run id. Without a key the "
    "payload is stored beside the results; `ult newrelic send PARTITION` sends it later.",
)
def newrelic_export(context: dg.AssetExecutionContext, k6_results: dict, ab_confirmation: dict,
                    newrelic: NewRelicResource, results_store: ResultsStoreResource):
    partition = context.partition_key
    deployed = latest_metadata(context.instance, "target_deployment", [partition]).get(partition, {})
    verdict = ab_confirmation["verdict"]
    common = {
        "imageTag": context.run.tags.get(TAG_IMAGE) or deployed.get("image_tag") or partition,
        "imageDigest": context.run.tags.get(TAG_DIGEST) or deployed.get("image_digest") or "",
        "partitionKey": partition,
        "runId": context.run.run_id,
    }
    payload = nr_payload.build_payload(k6_results, common, verdict=verdict, with_metrics=newrelic.send_metrics)
    folder = results_store.partition_dir(partition)
    path = nr_payload.store(folder, payload)
    summary = {"events": len(payload["events"]), "metrics": len(payload["metrics"]),
               "payload": dg.MetadataValue.path(str(path))}
    if not newrelic.configured:
        context.log.info("no New Relic key configured: payload stored for `ult newrelic send`")
        return dg.MaterializeResult(metadata={**summary, "status": "skipped: no New Relic key"})
    with newrelic.client() as client:
        reports = nr_payload.send(client, payload, folder)
    return dg.MaterializeResult(metadata={
        **summary, "status": "sent", "region": newrelic.region, "account_id": newrelic.account_id,
        "batches": sum(r.batches for r in reports.values()), "attempts": sum(r.attempts for r in reports.values()),
        "bytes_sent": sum(r.bytes_sent for r in reports.values()),
    })
