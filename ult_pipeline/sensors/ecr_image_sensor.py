"""`ecr_image_sensor`: every new user-service build in ECR becomes a partition and a run.

Newest wins: when a newer build arrives, queued and running runs of older builds are
cancelled (their partial results stay, marked interrupted), and only the newest of the
builds found in one tick gets a run.

Which images are builds, and their names, is `ult_pipeline.aws.images`' rule: signatures,
attestations, SBOMs and other OCI artifacts never are (they never get a partition and never
cancel a run); a build is named after its most specific tag (`build.build_tag`: `v2.3.0` before
`latest`), and with ULT_BUILD_TAG_PATTERN only after a tag that pattern matches (an image with
none is skipped with the reason, and looked at again next tick). The tags each image has now
are recorded in the history store, so a re-tag of a tested build (`v2.3.0` added to
`latest-<digest>`) starts no run but makes it a release for the `release` baseline.

One evaluation takes at most ULT_SENSOR_BUDGET_S seconds (default 20, well under Dagster's 60 s
tick limit): ECR's client gets timeouts and attempts that fit the budget
(`aws.clients.budget_config`) and the reading is abandoned when the budget is spent
(`aws.clients.within`); the tick is then skipped with the reason, the cursor kept.
"""

from __future__ import annotations

import time

import dagster as dg
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from ult_pipeline.analysis.history_store import HistoryStore
from ult_pipeline.assets.run_config_check import run_config_problems
from ult_pipeline.aws.clients import OutOfBudget, within
from ult_pipeline.aws.images import Cursor, OutOfTime, list_ecr_images, new_images, sort_images
from ult_pipeline.build import Build, is_signature_tag, short_digest
from ult_pipeline.jobs import load_test_job
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline.settings import PipelineSettings

# ECR did not answer (in time): the tick is skipped with "did not answer within" and the budget.
NO_ANSWER = (OutOfBudget, OutOfTime, ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError,
             ConnectionClosedError)
# Skipped images named in a skip message (all of them are in the sensor's log).
_NAMED_IN_MESSAGE = 5

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def cancel_older_runs(context: dg.SensorEvaluationContext, newest: Build) -> list[str]:
    """Best effort: cancel queued and running load tests of builds pushed before `newest`. A build
    pushed later (its run tags say when) keeps its run: an older image named only now (a tag
    added later) is not newer than it."""
    cancelled = []
    runs = context.instance.get_runs(filters=dg.RunsFilter(job_name=load_test_job.name, statuses=IN_FLIGHT))
    for run in runs:
        partition = run.tags.get("dagster/partition")
        if partition == newest.key:
            continue
        running = Build.from_run(run.tags, partition) if partition else None
        if running is not None and running.pushed_at is not None and newest.pushed_at is not None \
                and running.pushed_at > newest.pushed_at:
            context.log.info(f"kept run {run.run_id} of {partition}: pushed after {newest.key}")
            continue
        try:
            context.instance.run_coordinator.cancel_run(run.run_id)
            cancelled.append(run.run_id)
            context.log.info(f"cancelled run {run.run_id} of {run.tags.get('dagster/partition')}: a newer image arrived")
        except Exception as err:  # noqa: BLE001 - cancellation is best effort; the new run goes ahead
            context.log.warning(f"could not cancel run {run.run_id}: {err}")
    return cancelled


def _read_ecr(aws: AwsResource, settings: PipelineSettings, cursor: Cursor, deadline: float):
    """(every tagged image, the new ones, the new ones sorted into builds and the rest)."""
    ecr = aws.client("ecr", budget_s=settings.sensor_budget_s)
    repository = settings.ecr_repository
    images = list_ecr_images(ecr, repository, deadline=deadline)
    fresh, _ = new_images(images, cursor)
    return images, fresh, sort_images(ecr, repository, fresh, pattern=settings.build_tag_pattern, deadline=deadline)


def _record_tags(context: dg.SensorEvaluationContext, history: HistoryStore, images, cursor: Cursor) -> None:
    """The tags each image has now, into the history store (the `release` baseline reads them)."""
    known = set(cursor.seen)
    try:
        changed = history.record_image_tags({i.digest: i.tags for i in images
                                             if any(not is_signature_tag(t) for t in i.tags)})
    except OSError as err:  # the run requests matter more than the tags: logged, the tick goes on
        context.log.warning(f"could not record the images' tags in {history.folder}: {err}")
        return
    for digest, tags in changed.items():
        if digest in known:
            context.log.info(f"image {short_digest(digest)} (already seen, no new run) is now tagged {', '.join(tags)}")


def _skipped(images: dict[str, str], tags_of: dict[str, tuple[str, ...]]) -> list[str]:
    return [f"{short_digest(d)} ({', '.join(tags_of.get(d, ())) or 'no tag'}): {why}" for d, why in images.items()]


def evaluate(context: dg.SensorEvaluationContext, aws: AwsResource, settings: PipelineSettings,
             history: HistoryStore | None = None):
    """One tick: a run for the newest new build (older in-flight runs cancelled), partitions for all
    new builds, the cursor moved past every image sorted; a SkipReason (cursor kept) when the
    settings are invalid or ECR cannot be read within `settings.sensor_budget_s`. With `history`,
    the images' current tags are recorded in it."""
    problems = run_config_problems(settings.run_config())
    if problems:
        # Refused before any run exists, cursor kept: the image is tested once the settings are fixed.
        return dg.SkipReason("invalid run settings, no run requested: " + " | ".join(problems))
    cursor = Cursor.parse(context.cursor)
    budget = settings.sensor_budget_s
    deadline = time.monotonic() + budget
    try:
        images, fresh, found = within(budget, lambda: _read_ecr(aws, settings, cursor, deadline),
                                      what=f"reading ECR repository {settings.ecr_repository}")
    except NO_ANSWER as err:
        # A hanging or unreachable endpoint: skip within the budget, keep the cursor, try again next tick.
        return dg.SkipReason(f"ECR did not answer within {budget:g} s: {type(err).__name__}: {err}; "
                             "will try again next tick")
    except (ClientError, BotoCoreError) as err:
        # Throttling or an outage: skip with the reason, keep the cursor, never a duplicate run.
        return dg.SkipReason(f"ECR could not be read ({type(err).__name__}: {err}); will try again next tick")
    if history is not None:
        _record_tags(context, history, images, cursor)
    tags_of = {i.digest: i.tags for i in fresh}
    not_builds = _skipped(found.not_builds, tags_of)
    unnamed = _skipped(found.unnamed, tags_of)
    for line in not_builds:
        context.log.info(f"not a build, skipped for good: {line}")
    for line in unnamed:
        context.log.info(f"not named, skipped until a tag matches: {line}")
    # Every image sorted is seen; an image no tag may name yet is not (a matching tag added later makes it a build).
    next_cursor = cursor.remember([i for i in fresh if i.digest not in found.unnamed])
    if not found.builds:
        message = f"no new build in {settings.ecr_repository} ({len(images)} tagged images)"
        skipped = not_builds + unnamed
        if skipped:
            more = f"; and {len(skipped) - _NAMED_IN_MESSAGE} more" if len(skipped) > _NAMED_IN_MESSAGE else ""
            message += "; skipped: " + "; ".join(skipped[:_NAMED_IN_MESSAGE]) + more
        if next_cursor == cursor:
            return dg.SkipReason(message)
        return dg.SensorResult(skip_reason=dg.SkipReason(message), cursor=next_cursor.dump())
    newest = found.builds[-1]
    cancel_older_runs(context, newest)
    request = dg.RunRequest(
        run_key=newest.digest,
        partition_key=newest.key,
        run_config=settings.run_config(),
        tags=newest.to_run_tags(),
    )
    return dg.SensorResult(
        run_requests=[request],
        dynamic_partitions_requests=[builds_partitions.build_add_request([b.key for b in found.builds])],
        cursor=next_cursor.dump(),
    )


def build_ecr_image_sensor(interval_s: int = 30) -> dg.SensorDefinition:
    @dg.sensor(
        name="ecr_image_sensor", job=load_test_job, minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts a load test for every new user-service build in ECR (newest wins; signatures "
                    "and other artifacts are not builds).",
    )
    def ecr_image_sensor(context: dg.SensorEvaluationContext, aws: AwsResource, results_store: ResultsStoreResource):
        try:
            settings = PipelineSettings.from_env()
        except ValueError as err:
            return dg.SkipReason(f"invalid ULT_* settings, no run requested: {err}")
        return evaluate(context, aws, settings, results_store.history_store())

    return ecr_image_sensor
