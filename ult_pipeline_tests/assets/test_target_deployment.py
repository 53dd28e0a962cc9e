"""`target_deployment` rolls the sandbox to a pushed image and its knobs."""

from __future__ import annotations

import dagster as dg
import requests

from ult_pipeline.assets.target_deployment import target_deployment
from ult_pipeline.aws.images import list_images
from ult_pipeline.sandbox import aws as sandbox_aws
from ult_pipeline.sandbox import manager
from ult_pipeline.sandbox.service_process import ServiceKnobs


def test_deploys_the_image_of_the_partition_with_its_knobs(pipeline_resources, sandbox_settings, sandbox):
    pushed = sandbox_aws.push(sandbox_settings.aws_port, "deploy-test", ServiceKnobs(no_telemetry=frozenset({"me"})))
    image = next(i for i in list_images(pipeline_resources["aws"].client("ecr"), sandbox_aws.REPOSITORY)
                 if i.digest == pushed["digest"])
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("builds", [image.partition_key])
            # No run tags: the asset finds the image in ECR by the partition key.
            result = dg.materialize([target_deployment], partition_key=image.partition_key, instance=instance,
                                    resources=pipeline_resources)
        assert result.success
        [mat] = result.asset_materializations_for_node("target_deployment")
        assert mat.metadata["image_digest"].value == pushed["digest"]
        assert mat.metadata["knobs"].value["no_telemetry"] == ["me"]
        assert mat.metadata["seconds_to_healthy"].value > 0
        assert "task-definition/user-service" in mat.metadata["task_definition"].value
        assert requests.get(sandbox.url + "health", timeout=5).json() == {"status": "pass"}
    finally:
        manager.restart_service(sandbox_settings, ServiceKnobs())


def test_an_unknown_build_fails_clearly(pipeline_resources):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("builds", ["ghost-000000000000"])
        result = dg.materialize([target_deployment], partition_key="ghost-000000000000", instance=instance,
                                resources=pipeline_resources, raise_on_error=False)
    assert not result.success
    assert "no image in ECR repository 'user-service' matches build 'ghost-000000000000'" in str(
        result.get_step_failure_events()[0].event_specific_data.error
    )
