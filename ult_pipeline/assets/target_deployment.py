"""`target_deployment`: the load-test environment rolled to the build's image, and healthy."""

from datetime import datetime

import dagster as dg

from ult_pipeline.assets.run_config_check import require_valid_run_config
from ult_pipeline.aws.images import Image, list_images
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.deployer import TargetDeployerResource
from ult_pipeline.settings import PipelineSettings

TAG_IMAGE, TAG_DIGEST, TAG_PUSHED_AT = "ult/image_tag", "ult/image_digest", "ult/pushed_at"


def image_of_run(context: dg.AssetExecutionContext, aws: AwsResource, repository: str) -> Image:
    """The image named by the run's tags (set by the sensor), else found in ECR by partition key."""
    tags = context.run.tags
    if tags.get(TAG_DIGEST):
        return Image(datetime.fromisoformat(tags[TAG_PUSHED_AT]), tags[TAG_DIGEST], tags[TAG_IMAGE])
    for image in list_images(aws.client("ecr"), repository):
        if image.partition_key == context.partition_key:
            return image
    raise dg.Failure(
        f"no image in ECR repository {repository!r} matches build {context.partition_key!r} "
        "(key: tag plus the first 12 hex digits of the digest)"
    )


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
        "image_tag": image.tag,
        "image_digest": image.digest,
        "pushed_at": image.pushed_at.isoformat(),
        "seconds_to_healthy": dg.FloatMetadataValue(round(record.pop("seconds_to_healthy"), 2)),
        **{k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in record.items()},
    })
