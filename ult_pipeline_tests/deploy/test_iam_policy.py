"""deploy/iam-policy.json grants exactly the AWS actions the pipeline calls in production.

The calls are recorded with botocore's event hooks on every client the process creates
(`aws_calls.recording`) while the production code runs against moto on loopback
(`production_calls.record_production`: the code location loaded with ULT_TARGET_MODE=ecs, the ECR
sensor, `target_deployment` by run tags and by partition key, the deployer's restart,
dagster-aws' EcsRunLauncher launching, watching and terminating a run, its
S3ComputeLogManager, and the S3 IO manager of ULT_IO_BUCKET), and, in the slow test, during a whole sandbox build. Each call's operation
becomes its IAM action (`aws_calls.iam_action`), plus the actions IAM checks without a call of
their own (`aws_calls.IMPLIED`: iam:PassRole, ecs:TagResource on create). The test fails when
the code calls an action the policy lacks, or the policy grants one nothing calls.

Each call's resources (repository, service, task, task definition, log stream, object, bucket
prefix) must also fall under its statement's `Resource` (`aws_calls.out_of_scope`).

The policy is a template: the names are deploy/README.md's (those of deploy/ecs/*.json), and what
differs between deployments is a `${NAME}` placeholder filled with envsubst like the task
definitions': AWS_REGION, AWS_ACCOUNT_ID, PIPELINE_BUCKET, and the load-test target's roles
TARGET_TASK_ROLE and TARGET_EXECUTION_ROLE (deploy/iam-policy.md describes each).
"""

from __future__ import annotations

import copy
import json
import re
import threading

import pytest

from ult_pipeline_tests.deploy.aws_calls import (
    IMPLIED,
    POLICY_PATH,
    ROOT,
    Call,
    compare,
    granted_actions,
    iam_action,
    load_policy,
    needed_actions,
    out_of_scope,
    recording,
    render,
)

DOC_PATH = ROOT / "deploy" / "iam-policy.md"
REGION, ACCOUNT = "us-east-1", "123456789012"  # production_calls' moto
# The placeholders' values for the recorded deployment (production_calls).
RENDER_VALUES = {"AWS_REGION": REGION, "AWS_ACCOUNT_ID": ACCOUNT, "PIPELINE_BUCKET": "ult-pipeline-logs",
                 "TARGET_TASK_ROLE": "user-service-loadtest-task", "TARGET_EXECUTION_ROLE": "user-service-loadtest-execution"}
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
POLICY_ACTIONS = sorted(granted_actions(load_policy()))


@pytest.fixture(scope="module")
def production():
    from ult_pipeline_tests.deploy.production_calls import record_production

    return record_production()


@pytest.fixture(scope="module")
def needed(production):
    recorder, _ = production
    return needed_actions(recorder.calls)


# ---- The policy document ------------------------------------------------------------------------------------


def test_the_policy_is_a_valid_document_with_a_purpose_per_statement():
    policy = load_policy()
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids), sids
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Action"] and statement["Resource"], statement
        assert all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", a) for a in statement["Action"]), statement["Action"]
    # No wildcard action, no NotAction, no action granted twice: granted_actions refuses them.
    assert len(POLICY_ACTIONS) == sum(len(s["Action"]) for s in policy["Statement"])


def test_every_placeholder_is_documented_and_the_rendered_policy_is_concrete():
    text = POLICY_PATH.read_text()
    names = sorted(set(PLACEHOLDER.findall(text)))
    doc = DOC_PATH.read_text()
    documented = set(re.findall(r"^\| `\$\{([A-Z_]+)\}` \|", doc, flags=re.MULTILINE))  # the table's rows
    assert documented == set(names), (f"{DOC_PATH.name}'s placeholder table: missing {set(names) - documented}, "
                                      f"not in the policy {documented - set(names)}")
    rendered = json.dumps(render(text, RENDER_VALUES))
    assert "${" not in rendered and "123456789012" in rendered


def test_every_action_is_documented():
    doc = DOC_PATH.read_text()
    assert not [a for a in POLICY_ACTIONS if f"`{a}`" not in doc], "actions without a line in deploy/iam-policy.md"


# ---- Operations to actions, and the recorder -----------------------------------------------------------------


def test_operations_map_to_iam_actions():
    assert iam_action("ecr", "DescribeImages") == "ecr:DescribeImages"
    assert iam_action("ecs", "DescribeServices") == "ecs:DescribeServices"
    assert iam_action("logs", "GetLogEvents") == "logs:GetLogEvents"
    # S3 authorises several operations with one action.
    assert iam_action("s3", "HeadObject") == "s3:GetObject"
    assert iam_action("s3", "ListObjectsV2") == "s3:ListBucket"
    assert iam_action("s3", "DeleteObjects") == "s3:DeleteObject"
    assert iam_action("s3", "CreateMultipartUpload") == "s3:PutObject"


def _call_nothing(client) -> None:
    from botocore.exceptions import EndpointConnectionError

    from ult_pipeline_tests.conftest import free_port

    ecr = client("ecr", region="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=0,
                 connect_timeout_s=1)
    with pytest.raises(EndpointConnectionError):
        ecr.describe_registry()


def test_the_recorder_sees_clients_made_anywhere_with_any_endpoint(monkeypatch):
    from moto import mock_aws

    from ult_pipeline.aws.clients import client

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "MOTO_ECS_SERVICE_RUNNING": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import boto3

    with mock_aws(), recording() as recorder:
        ecs = client("ecs", region="us-east-1")  # the pipeline's own factory
        ecs.create_cluster(clusterName="c1")
        task = ecs.register_task_definition(family="f1", containerDefinitions=[{"name": "a", "image": "i", "memory": 64}])
        ecs.create_service(cluster="c1", serviceName="s1", desiredCount=1,
                           taskDefinition=task["taskDefinition"]["taskDefinitionArn"])
        ecs.get_waiter("services_stable").wait(cluster="c1", services=["s1"], WaiterConfig={"Delay": 1})
        # A resource's client, and a client made in another thread with an explicit (loopback) endpoint:
        # the call is recorded before it is sent (here, to nothing listening).
        boto3.resource("s3").meta.client.list_buckets()
        thread = threading.Thread(target=_call_nothing, args=(client,))
        thread.start()
        thread.join()
    actions = [c.action for c in recorder.calls]
    assert "ecs:DescribeServices" in actions  # the waiter's polls
    assert {"ecs:CreateCluster", "s3:ListAllMyBuckets", "ecr:DescribeRegistry"} <= set(actions), actions
    # Made by this test, not by the pipeline: nothing here needs a permission in production.
    assert all(c.origin.startswith("ult_pipeline_tests/") for c in recorder.calls), {c.origin for c in recorder.calls}
    assert needed_actions(recorder.calls) == {}


def test_calls_are_attributed_to_the_code_that_made_them():
    sandbox = Call("ecr:BatchGetImage", "BatchGetImage", "ult_pipeline/sandbox/aws.py:knobs_of")
    pipeline = Call("ecr:BatchGetImage", "BatchGetImage", "ult_pipeline/aws/images.py:manifests")
    transfer = Call("s3:PutObject", "PutObject", "s3transfer/upload.py:_main")
    fixture = Call("ecr:PutImage", "PutImage", "ult_pipeline_tests/deploy/production_calls.py:_provision")
    assert [c.in_production for c in (sandbox, pipeline, transfer, fixture)] == [False, True, True, False]


def test_implied_actions_follow_the_calls_that_need_them():
    register = Call("ecs:RegisterTaskDefinition", "RegisterTaskDefinition", "ult_pipeline/deploy/ecs.py:roll_service",
                    frozenset({"family", "containerDefinitions", "executionRoleArn"}))
    bare = Call("ecs:RegisterTaskDefinition", "RegisterTaskDefinition", "ult_pipeline/deploy/ecs.py:roll_service",
                frozenset({"family", "containerDefinitions"}))
    run = Call("ecs:RunTask", "RunTask", "dagster_aws/ecs/utils.py:run_ecs_task", frozenset({"taskDefinition", "tags"}))
    assert set(needed_actions([bare])) == {"ecs:RegisterTaskDefinition"}
    assert set(needed_actions([register])) == {"ecs:RegisterTaskDefinition", "iam:PassRole"}
    assert set(needed_actions([run])) == {"ecs:RunTask", "iam:PassRole", "ecs:TagResource"}
    assert {rule.action for rule in IMPLIED} == {"iam:PassRole", "ecs:TagResource"}


# ---- The comparison can fail -------------------------------------------------------------------------------


def _without(policy: dict, action: str) -> dict:
    changed = copy.deepcopy(policy)
    for statement in changed["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != action]
    changed["Statement"] = [s for s in changed["Statement"] if s["Action"]]
    return changed


def test_a_removed_action_is_reported_missing_and_a_spurious_one_unused():
    policy = load_policy()
    needed = {a: {"somewhere.py:f"} for a in granted_actions(policy)}
    assert compare(policy, needed).exact
    missing = compare(_without(policy, "ecs:StopTask"), needed)
    assert missing.missing == {"ecs:StopTask": {"somewhere.py:f"}} and not missing.unused
    assert "missing from the policy: ecs:StopTask (called by somewhere.py:f)" in missing.report()
    spurious = copy.deepcopy(policy)
    spurious["Statement"].append({"Sid": "Spurious", "Effect": "Allow", "Action": ["ecs:DeleteService"], "Resource": "*"})
    unused = compare(spurious, needed)
    assert unused.unused == {"ecs:DeleteService": "Spurious"} and not unused.missing
    assert "granted but never called: ecs:DeleteService (statement Spurious)" in unused.report()
    for broad in (["ecs:*"], ["ecs:Describe*"]):
        with pytest.raises(ValueError, match="wildcard"):
            granted_actions({"Statement": [{"Sid": "Broad", "Effect": "Allow", "Action": broad, "Resource": "*"}]})


# ---- Production, recorded ------------------------------------------------------------------------------------


def test_the_production_paths_ran(production):
    _, steps = production
    assert steps["deployer"] == "EcsDeployerResource"
    assert steps["deploy"]["failures"] == {"tagged": [], "by key": []}, steps["deploy"]
    launch = steps["launch"]
    assert launch["tags"]["ecs/task_arn"].startswith("arn:aws:ecs:") and launch["terminated"], launch
    assert launch["health"] == "WorkerStatus.RUNNING", launch
    assert steps["compute_logs"]["stdout"] == "hello from a step\n"
    io = steps["io"]
    assert io["io_manager"] == "S3PickleIOManager" and io["loaded"] == steps["deploy"]["partition"], io
    assert io["steps"] == [["first_output", "second_output"], ["second_output"]], io


def test_the_io_manager_lists_gets_and_puts_under_its_prefix_only(production):
    recorder, _ = production
    io_calls = [c for c in recorder.production_calls() if any(
        isinstance(v, str) and v.startswith("dagster/io") for _, v in c.values)]
    assert {c.action for c in io_calls} == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}, io_calls
    # Dagster's UPathIOManager never deletes an output in S3 (`unlink` is not called): no s3:DeleteObject there.
    assert all(dict(c.values)["Bucket"] == RENDER_VALUES["PIPELINE_BUCKET"] for c in io_calls)


def test_the_policy_grants_exactly_what_production_calls(needed):
    comparison = compare(load_policy(), needed)
    assert comparison.exact, "deploy/iam-policy.json does not match the calls:\n" + comparison.report()


@pytest.mark.parametrize("action", POLICY_ACTIONS)
def test_removing_any_action_from_the_policy_fails_the_check(needed, action):
    comparison = compare(_without(load_policy(), action), needed)
    assert set(comparison.missing) == {action} and not comparison.unused


def test_every_call_falls_under_its_statements_resources(production):
    recorder, _ = production
    problems = out_of_scope(render(POLICY_PATH.read_text(), RENDER_VALUES), recorder.calls, REGION, ACCOUNT)
    assert not problems, "calls outside the policy's resources:\n" + "\n".join(problems)


def test_a_resource_outside_the_policy_is_reported():
    policy = render(POLICY_PATH.read_text(), RENDER_VALUES)
    other_repository = Call("ecr:DescribeImages", "DescribeImages", "ult_pipeline/aws/images.py:list_ecr_images",
                            frozenset({"repositoryName"}), (("repositoryName", "another-service"),))
    other_cluster = Call("ecs:StopTask", "StopTask", "dagster_aws/ecs/launcher.py:terminate", frozenset({"task"}),
                         (("cluster", "prod"), ("task", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/abc")))
    outside_prefix = Call("s3:ListBucket", "ListObjects", "dagster_aws/s3/compute_log_manager.py:delete_logs",
                          frozenset({"Bucket", "Prefix"}), (("Bucket", RENDER_VALUES["PIPELINE_BUCKET"]), ("Prefix", "")))
    inside = Call("ecr:DescribeImages", "DescribeImages", "ult_pipeline/aws/images.py:list_ecr_images",
                  frozenset({"repositoryName"}), (("repositoryName", "user-service"),))
    problems = out_of_scope(policy, [other_repository, other_cluster, outside_prefix, inside], REGION, ACCOUNT)
    assert len(problems) == 3 and "repository/another-service" in problems[0], problems


# ---- A whole sandbox build ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_whole_sandbox_build_needs_nothing_beyond_the_policy(pipeline_resources, sandbox_settings, needed, tmp_path):
    """Sensor tick and every per-build asset of one build in the sandbox: its production calls (the
    sandbox deployer's own ECR read is the sandbox's) are all granted and all seen in production too."""
    import dagster as dg

    from ult_pipeline.resources.newrelic import NewRelicResource
    from ult_pipeline.resources.target import ResultsStoreResource
    from ult_pipeline.sandbox import aws as sandbox_aws
    from ult_pipeline.sandbox import manager
    from ult_pipeline.sandbox.service_process import ServiceKnobs
    from ult_pipeline.sensors.ecr_image_sensor import evaluate
    from ult_pipeline.settings import PipelineSettings
    from ult_pipeline_tests.assets.test_pipeline_chain import PER_BUILD, RUN_CONFIG

    resources = {**pipeline_resources, "results_store": ResultsStoreResource(base_dir=str(tmp_path)),
                 "newrelic": NewRelicResource()}
    sandbox_aws.push(sandbox_settings.aws_port, "iam1.0.0", ServiceKnobs())
    try:
        with dg.instance_for_test() as instance, recording() as recorder:
            tick = evaluate(dg.build_sensor_context(instance=instance), resources["aws"], PipelineSettings.from_env())
            [request] = tick.run_requests
            instance.add_dynamic_partitions("builds", [request.partition_key])
            result = dg.materialize(PER_BUILD, partition_key=request.partition_key, instance=instance,
                                    resources=resources, run_config=RUN_CONFIG, raise_on_error=False, tags=request.tags)
    finally:
        manager.restart_service(sandbox_settings, ServiceKnobs())
    assert not [e.step_key for e in result.get_step_failure_events()]
    build = needed_actions(recorder.calls)
    assert {"ecr:DescribeImages", "ecs:UpdateService", "ecs:DescribeServices"} <= set(build), build
    assert any(not c.in_production and c.origin.startswith("ult_pipeline/sandbox/") for c in recorder.calls)
    missing = compare(load_policy(), build).missing
    assert not missing, "the sandbox build calls actions the policy lacks:\n" + compare(load_policy(), build).report()
    assert set(build) <= set(needed), f"the build calls actions the production recording never made: {set(build) - set(needed)}"
    # The sandbox names its repository, cluster and service as production does (in moto's account).
    problems = out_of_scope(render(POLICY_PATH.read_text(), RENDER_VALUES), recorder.calls, REGION, ACCOUNT)
    assert not problems, "sandbox build calls outside the policy's resources:\n" + "\n".join(problems)

