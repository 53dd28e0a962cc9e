"""`target_deployment`: the load-test environment rolled to the build's image, and healthy."""

import dagster as dg

from ult_pipeline.assets.presentation import build_entries
from ult_pipeline.assets.run_config_check import require_valid_run_config
from ult_pipeline.aws.images import find_image
from ult_pipeline.build import RUN_TAG_DIGEST, RUN_TAG_IMAGE, RUN_TAG_PUSHED_AT, SHORT_DIGEST_LENGTH, Build
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.deployer import TargetDeployerResource
from ult_pipeline.settings import PipelineSettings

# The run tags' names, owned by ult_pipeline.build (kept here for the modules that import them from here).
TAG_IMAGE, TAG_DIGEST, TAG_PUSHED_AT = RUN_TAG_IMAGE, RUN_TAG_DIGEST, RUN_TAG_PUSHED_AT


def build_of(key: str, run_tags: dict[str, str], aws: AwsResource, repository: str) -> Build:
    """The build (image) of partition `key`: named by the run's tags (set by the sensor) when they
    name this partition's build, else found in ECR by its partition key."""
    tagged = Build.from_run(run_tags, key)
    if tagged is not None:
        return tagged
    image = find_image(aws.client("ecr"), repository, key)
    if image is None:
        raise dg.Failure(
            f"no image in ECR repository {repository!r} matches build {key!r} "
            f"(key: tag plus the first {SHORT_DIGEST_LENGTH} hex digits of the digest)"
        )
    return image


def image_of_run(context: dg.AssetExecutionContext, aws: AwsResource, repository: str) -> Build:
    """The image of the run's partition: from the run's tags (set by the sensor), else from ECR."""
    return build_of(context.partition_key, context.run.tags, aws, repository)


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    pool="load_test_target",
    description="Rolls the load-test environment (ECS service, or the sandbox) to the build's image and waits "
    "until /user/health passes. Nothing downstream runs against an old image if this fails.",
)
def target_deployment(context: dg.AssetExecutionContext, target_deployer: TargetDeployerResource, aws: AwsResource):
    require_valid_run_config(context)
    image = image_of_run(context, aws, PipelineSettings.from_env().ecr_repository)
    context.log.info(f"deploying {image.tag} ({image.digest})")
    record = target_deployer.deploy(image)
    return dg.MaterializeResult(metadata={
        **build_entries(context.partition_key, context.run.tags),
        "image_tag": image.tag,
        "image_digest": image.digest,
        "pushed_at": image.pushed_at.isoformat(),
        "seconds_to_healthy": dg.FloatMetadataValue(round(record.pop("seconds_to_healthy"), 2)),
        **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in record.items()},
    })
