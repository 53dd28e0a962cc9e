"""`ecr_image_sensor`: every new user-service image in ECR becomes a partition and a run.

Newest wins: when a newer image arrives, queued and running runs of older builds are
cancelled (their partial results stay, marked interrupted), and only the newest of the
images found in one tick gets a run.
"""

from __future__ import annotations

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError

from ult_pipeline.assets.run_config_check import run_config_problems
from ult_pipeline.aws.images import Cursor, list_images, new_images
from ult_pipeline.jobs import load_test_job
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.settings import PipelineSettings

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def cancel_older_runs(context: dg.SensorEvaluationContext, newest_partition: str) -> list[str]:
    """Best effort: cancel queued and running load tests of other builds."""
    cancelled = []
    runs = context.instance.get_runs(filters=dg.RunsFilter(job_name=load_test_job.name, statuses=IN_FLIGHT))
    for run in runs:
        if run.tags.get("dagster/partition") == newest_partition:
            continue
        try:
            context.instance.run_coordinator.cancel_run(run.run_id)
            cancelled.append(run.run_id)
            context.log.info(f"cancelled run {run.run_id} of {run.tags.get('dagster/partition')}: a newer image arrived")
        except Exception as err:  # noqa: BLE001 - cancellation is best effort; the new run goes ahead
            context.log.warning(f"could not cancel run {run.run_id}: {err}")
    return cancelled


def evaluate(context: dg.SensorEvaluationContext, aws: AwsResource, settings: PipelineSettings):
    problems = run_config_problems(settings.run_config())
    if problems:
        # Refused before any run exists, cursor kept: the image is tested once the settings are fixed.
        return dg.SkipReason("invalid run settings, no run requested: " + " | ".join(problems))
    cursor = Cursor.parse(context.cursor)
    try:
        images = list_images(aws.client("ecr"), settings.ecr_repository)
    except (ClientError, BotoCoreError) as err:
        # Throttling or an outage: skip with the reason, keep the cursor, never a duplicate run.
        return dg.SkipReason(f"ECR could not be read ({type(err).__name__}: {err}); will try again next tick")
    fresh, next_cursor = new_images(images, cursor)
    if not fresh:
        return dg.SkipReason(f"no new image in {settings.ecr_repository} ({len(images)} known)")
    newest = fresh[-1]
    cancel_older_runs(context, newest.key)
    request = dg.RunRequest(
        run_key=newest.digest,
        partition_key=newest.key,
        run_config=settings.run_config(),
        tags=newest.to_run_tags(),
    )
    return dg.SensorResult(
        run_requests=[request],
        dynamic_partitions_requests=[builds_partitions.build_add_request([i.key for i in fresh])],
        cursor=next_cursor.dump(),
    )


def build_ecr_image_sensor(interval_s: int = 30) -> dg.SensorDefinition:
    @dg.sensor(
        name="ecr_image_sensor", job=load_test_job, minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts a load test for every new user-service image in ECR (newest wins).",
    )
    def ecr_image_sensor(context: dg.SensorEvaluationContext, aws: AwsResource):
        try:
            settings = PipelineSettings.from_env()
        except ValueError as err:
            return dg.SkipReason(f"invalid ULT_* settings, no run requested: {err}")
        return evaluate(context, aws, settings)

    return ecr_image_sensor
