"""The production instance (deploy/production/dagster.yaml) and the ECS task definitions that carry its
environment (deploy/ecs/*.json): Dagster's own config schema accepts the file with the variables set,
every process gets every variable it reads, and secrets only ever come from Secrets Manager."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ult_pipeline.settings import VARIABLES
from ult_pipeline_tests.deploy.production_stack import (
    DEPLOY,
    ROOT,
    TASK_DEFINITIONS,
    Stack,
    load_task_definition,
    placeholders,
    running_stack,
)

PRODUCTION = DEPLOY / "production" / "dagster.yaml"
WORKSPACE = DEPLOY / "production" / "workspace.yaml"
# The variables that ULT_TARGET_MODE=ecs binds without a default (resources/environment.py).
PRODUCTION_REQUIRED = {"ULT_TARGET_URL", "ULT_TARGET_API_KEY", "ULT_TARGET_DSN", "ULT_TARGET_ENVIRONMENT",
                       "ULT_TARGET_BASE_URL", "ULT_ECS_CLUSTER", "ULT_ECS_SERVICE", "ULT_ECR_REPOSITORY_URI"}
SECRETS = {name for name, v in VARIABLES.items() if v.secret} | {"DAGSTER_PG_PASSWORD"}


def env_names(path: Path) -> set[str]:
    """The variables a Dagster YAML file reads (`{env: NAME}` anywhere in it)."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(path.read_text()))
    return found


def containers() -> dict[str, dict]:
    values = placeholders(5432, "bucket")
    return {p.stem: load_task_definition(p, values)["containerDefinitions"][0] for p in TASK_DEFINITIONS}


def names(container: dict, key: str) -> set[str]:
    return {e["name"] for e in container.get(key, [])}


def test_the_production_instance_is_the_local_one_plus_storage_run_launcher_and_compute_logs():
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    production = yaml.safe_load(PRODUCTION.read_text())
    extra = {key: production.pop(key) for key in ("storage", "run_launcher", "compute_logs")}
    assert production == local  # queue, pools (load_test_target: one run at a time), run monitoring
    assert extra["run_launcher"]["class"] == "EcsRunLauncher"
    assert extra["compute_logs"]["class"] == "S3ComputeLogManager"
    assert extra["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


def test_every_process_gets_every_variable_of_the_instance_and_workspace():
    instance_vars, workspace_vars = env_names(PRODUCTION), env_names(WORKSPACE)
    assert {"DAGSTER_PG_PASSWORD", "DAGSTER_RUN_TASK_DEFINITION", "DAGSTER_COMPUTE_LOGS_BUCKET"} <= instance_vars
    assert workspace_vars == {"DAGSTER_CODE_LOCATION_HOST", "DAGSTER_CODE_LOCATION_PORT"}
    for name, container in containers().items():
        given = names(container, "environment") | names(container, "secrets")
        assert instance_vars <= given, (name, instance_vars - given)
        if name in ("daemon", "webserver"):  # they load the code location from its service
            assert workspace_vars <= given, name


def test_the_code_location_and_run_worker_get_what_production_mode_reads():
    found = containers()
    for name in ("code-location", "run-worker"):
        container = found[name]
        given = names(container, "environment") | names(container, "secrets")
        assert PRODUCTION_REQUIRED <= given, (name, PRODUCTION_REQUIRED - given)
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["ULT_TARGET_MODE"] == "ecs"
        assert env["ULT_RESULTS_DIR"] in {m["containerPath"] for m in container.get("mountPoints", [])} or \
            name == "code-location"
    # Both load the same definitions: the same pipeline settings.
    assert ({e["name"]: e["value"] for e in found["code-location"]["environment"] if e["name"].startswith("ULT_")} ==
            {e["name"]: e["value"] for e in found["run-worker"]["environment"] if e["name"].startswith("ULT_")})
    # The run launcher's container is the run worker's.
    launcher = yaml.safe_load(PRODUCTION.read_text())["run_launcher"]["config"]
    assert found["run-worker"]["name"] == launcher["container_name"]


def test_secrets_only_come_from_secrets_manager_and_every_variable_is_registered():
    for name, container in containers().items():
        assert not names(container, "environment") & SECRETS, name
        assert names(container, "secrets") <= SECRETS, name
        for variable in names(container, "environment") | names(container, "secrets"):
            assert variable in VARIABLES or variable.startswith(("DAGSTER_", "AWS_")), (name, variable)


def test_the_image_runs_the_instance_and_workspace_it_ships():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY deploy/production/dagster.yaml deploy/production/workspace.yaml /opt/dagster/home/" in dockerfile
    for name, container in containers().items():
        for word in container.get("command", []):
            if word.startswith("/opt/dagster/home/"):
                assert (DEPLOY / "production" / Path(word).name).exists(), (name, word)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("production")) as running:
        yield running


def instance_env(monkeypatch, stack: Stack, **overrides: str) -> None:
    for key, value in stack.environment("daemon", **overrides).items():
        monkeypatch.setenv(key, value)


@pytest.mark.slow
def test_dagsters_schema_accepts_the_production_instance_and_it_starts(stack, monkeypatch):
    instance_env(monkeypatch, stack)
    with dg.DagsterInstance.from_config(str(stack.home)) as instance:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "EcsRunLauncher"
        # The family name was resolved to the registered revision when the launcher started.
        assert launcher.task_definition == stack.task_definitions["run-worker"]["taskDefinitionArn"]
        assert launcher.container_name == "run" and launcher.secrets_tags == []
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.run_monitoring_enabled
        # PostgreSQL storage works: a run goes in and comes back.
        run = instance.create_run_for_job(dg.GraphDefinition(name="probe").to_job(), run_id=None)
        assert instance.get_run_by_id(run.run_id) is not None


@pytest.mark.slow
def test_a_misspelled_setting_is_refused_by_dagsters_schema(stack, monkeypatch, tmp_path):
    instance_env(monkeypatch, stack)
    shutil.copy(PRODUCTION, tmp_path / "dagster.yaml")
    text = (tmp_path / "dagster.yaml").read_text().replace("container_name: run", "container: run")
    (tmp_path / "dagster.yaml").write_text(text)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        # Each part's config is checked against its class's schema when the part starts.
        with pytest.raises(dg.DagsterInvalidConfigError, match="container"):
            instance.run_launcher  # noqa: B018
