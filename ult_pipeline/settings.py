"""Every environment variable the pipeline reads, in one registry, read when asked (never at import).

`VARIABLES` names each variable once, with its default and meaning; `setting(env, name)` is the
one way to read one, and `env_var(name)` binds one as a `dg.EnvVar` (read when a run starts; a
secret is never shown in the UI). The README's tables are checked against this registry by a test. The k6
suite's own `ULT_*` variables (rate, duration...) are documented in k6/README.md and built by
`LoadProfile.k6_env`; they are not read from the pipeline's environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ult_pipeline.loadtest.profiles import WRITE_SCENARIOS


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None
    meaning: str
    secret: bool = False


VARIABLES: dict[str, Variable] = {v.name: v for v in (
    # Where the pipeline runs against.
    Variable("ULT_TARGET_MODE", "ecs", "ecs (production) or sandbox (set by `ult demo`)"),
    Variable("ULT_TARGET_URL", None, "GraphQL URL of the target user-service"),
    Variable("ULT_TARGET_API_KEY", None, "the target's API key (super-admin)", secret=True),
    Variable("ULT_TARGET_DSN", None, "libpq DSN of the target's database, wiped before seeding", secret=True),
    Variable("ULT_TARGET_ENVIRONMENT", None, "load-test environment name the database must be marked with"),
    Variable("ULT_TARGET_BASE_URL", None, "ecs: the service's base URL for /user/health"),
    Variable("ULT_ECS_CLUSTER", None, "ecs: the load-test cluster"),
    Variable("ULT_ECS_SERVICE", None, "ecs: the user-service's ECS service"),
    Variable("ULT_ECS_CONTAINER", "user-service", "ecs: the container whose image is rolled"),
    Variable("ULT_ECR_REPOSITORY_URI", None, "ecs: the repository URI images are rolled from"),
    Variable("ULT_ECR_REPOSITORY", "user-service", "the ECR repository the sensor watches"),
    Variable("ULT_AWS_ENDPOINT_URL", None, "an AWS endpoint other than AWS's (moto in the sandbox)"),
    Variable("AWS_DEFAULT_REGION", "us-east-1", "AWS region"),
    # Results, telemetry, New Relic.
    Variable("ULT_RESULTS_DIR", "~/.ult/results", "folder of run results, identities and reports"),
    Variable("ULT_RESULTS_URL", None, "where ULT_RESULTS_DIR is served over HTTP (links from the UI to reports; "
             "`ult demo` serves it)"),
    Variable("ULT_IO_BUCKET", None, "ecs: S3 bucket for assets' outputs between steps and runs (unset: local disk)"),
    Variable("ULT_SENSOR_INTERVAL_S", "1", "seconds between ECR sensor ticks (the daemon ticks at most every 5 s)"),
    Variable("ULT_SENSOR_BUDGET_S", "20", "seconds one ECR sensor evaluation may take (at most 55: Dagster "
             "fails a tick after 60); past it the tick is skipped with the reason"),
    Variable("ULT_BUILD_TAG_PATTERN", None, "a regex: only image tags it matches in full name builds (unset: "
             "any tag; a version tag before other tags, before moving tags such as latest)"),
    Variable("ULT_TELEMETRY_SOURCE", "sandbox", "server-side telemetry: sandbox (/user/metrics) or newrelic"),
    Variable("ULT_NEWRELIC_ACCOUNT_ID", "0", "New Relic account id"),
    Variable("ULT_NEWRELIC_USER_KEY", None, "New Relic user API key (NerdGraph queries)", secret=True),
    Variable("ULT_NEWRELIC_APP_NAME", "user-service-loadtest", "the service's New Relic application name"),
    Variable("ULT_NEWRELIC_REGION", "US", "US or EU"),
    Variable("ULT_NEWRELIC_LICENSE_KEY", None, "New Relic license key (unset: exports stored, not sent)",
             secret=True),
    Variable("ULT_NEWRELIC_METRICS", "0", "1: also send gauges to the Metric API"),
    Variable("ULT_NEWRELIC_ENDPOINT", None, "another ingest endpoint (a local fake New Relic)"),
    Variable("ULT_OTLP_ENDPOINT", None, "k6's raw series over OTLP: host:port"),
    Variable("ULT_OTLP_HEADERS", None, "OTLP headers, e.g. api-key=...", secret=True),
    # What each run does (read by the sensor when it requests a run).
    Variable("ULT_DATASET_PROFILE", "standard", "dataset profile"),
    Variable("ULT_DATASET_SEED", "1", "dataset seed"),
    Variable("ULT_LOAD_PROFILE", "default", "load profile"),
    Variable("ULT_LOAD_DURATION", None, "override of the load profile's duration"),
    Variable("ULT_LOAD_RATE", None, "override of the load profile's rate (whole iterations/s)"),
    Variable("ULT_SCENARIO", None, "override of the load profile's scenario: student_landing, teacher, admin_writes, "
             "roster_contention or mixed"),
    Variable("ULT_ADMIN_WRITES_WEIGHT", "0", "mixed: weight of administrators' writes (admin_writes) beside the "
             "students' 80 and the teachers' 20 (e.g. 10); 0 keeps mixed read-only and comparable with its history"),
    Variable("ULT_CONFIRM_REGRESSIONS", "1", "re-run suspected regressions A,B,A,B (0: off)"),
    Variable("ULT_WRITE_TESTS", None, "write tests run on every build after its read test, comma-separated: "
             "admin_writes (the administrators' mutations, judged on their own history), roster_contention "
             "(parallel roster writes; no_lost_writes), or all; unset: none"),
    Variable("ULT_WRITE_RATE", "2", "admin_writes write test: iterations per second (whole number; 9 mutations each)"),
    # The sandbox and the demo.
    Variable("ULT_SANDBOX_HOME", "~/.ult/sandbox", "the sandbox's state folder"),
    Variable("ULT_SANDBOX_PORT", None, "the sandbox service's port (default 18080, or the running one's)"),
    Variable("ULT_SANDBOX_AWS_PORT", None, "the sandbox's moto port (default 18500, or the running one's)"),
    Variable("ULT_SANDBOX_DSN", None, "an outside PostgreSQL for the sandbox", secret=True),
    Variable("ULT_DEMO_HOME", "~/.ult/demo", "the demo's state folder"),
    Variable("ULT_USER_SERVICE_SCHEMA", None, "path of the user-service's schema.graphql"),
)}


def setting(env: Mapping[str, str], name: str) -> str | None:
    """The value of registered variable ``name`` in ``env`` (empty counts as unset), else its default."""
    return env.get(name) or VARIABLES[name].default


def env_var(name: str):
    """Registered variable ``name`` bound as dg.EnvVar: read when a run starts (secrets: never shown)."""
    import dagster as dg

    return dg.EnvVar(VARIABLES[name].name)


def number(env: Mapping[str, str], name: str, kind: type = int):
    """``kind`` of registered variable ``name`` (None when unset and without default), or a ValueError
    that names the variable and what it must be."""
    value = setting(env, name)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"${name}={value!r} is not a {'whole number' if kind is int else 'number'}") from None


def _positive(env: Mapping[str, str], name: str) -> int:
    value = number(env, name, int)
    if value is None or value < 1:
        raise ValueError(f"${name}={setting(env, name)!r} must be a whole number of at least 1")
    return value


def sensor_interval_s(env: Mapping[str, str]) -> int:
    """`ULT_SENSOR_INTERVAL_S` when valid, else its default. A bad value must not take the code location
    (every asset and job) down: the sensor reads every setting at its tick and skips with the reason."""
    try:
        return _positive(env, "ULT_SENSOR_INTERVAL_S")
    except ValueError:
        return int(VARIABLES["ULT_SENSOR_INTERVAL_S"].default)


# Dagster fails a sensor tick that takes longer than 60 s; a budget leaves room for the rest of the tick.
MAX_SENSOR_BUDGET_S = 55.0


def _weight(env: Mapping[str, str], name: str) -> int:
    value = number(env, name, int)
    if value is None or value < 0:
        raise ValueError(f"${name}={setting(env, name)!r} must be a whole number, 0 or more")
    return value


def _budget(env: Mapping[str, str], name: str) -> float:
    value = number(env, name, float)
    if value is None or not 0 < value <= MAX_SENSOR_BUDGET_S:
        raise ValueError(f"${name}={setting(env, name)!r} must be a number of seconds above 0 and at most "
                         f"{MAX_SENSOR_BUDGET_S:g} (Dagster fails a tick after 60 s)")
    return value


# The write tests a build may run (assets.write_tests): the write scenarios of the k6 suite.
WRITE_TEST_NAMES = WRITE_SCENARIOS


def _write_tests(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    value = (setting(env, name) or "").strip()
    if value.lower() in ("", "none", "0", "off"):
        return ()
    if value.lower() == "all":
        return WRITE_TEST_NAMES
    named = [part.strip().lower() for part in value.split(",") if part.strip()]  # as `all`/`none`: any case
    unknown = [n for n in named if n not in WRITE_TEST_NAMES]
    if unknown:
        raise ValueError(f"${name}={value!r}: unknown write test(s) {', '.join(unknown)}; known: "
                         f"{', '.join(WRITE_TEST_NAMES)}, all or none")
    return tuple(n for n in WRITE_TEST_NAMES if n in named)


def _pattern(env: Mapping[str, str], name: str) -> str | None:
    value = setting(env, name)
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error as err:
        raise ValueError(f"${name}={value!r} is not a regular expression ({err})") from None
    return value


@dataclass(frozen=True)
class PipelineSettings:
    dataset_profile: str = "standard"
    dataset_seed: int = 1
    load_profile: str = "default"
    load_duration: str | None = None
    load_rate: float | None = None
    scenario: str | None = None
    admin_writes_weight: int = 0
    write_tests: tuple[str, ...] = ()
    write_rate: int = 2
    ecr_repository: str = "user-service"
    sensor_interval_s: int = 1
    confirm_regressions: bool = True
    sensor_budget_s: float = 20.0
    build_tag_pattern: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineSettings:
        """The run settings in ULT_* variables; ValueError naming the variable when one is not a number."""
        env = os.environ if env is None else env
        return cls(
            dataset_profile=setting(env, "ULT_DATASET_PROFILE"),
            dataset_seed=number(env, "ULT_DATASET_SEED", int),
            load_profile=setting(env, "ULT_LOAD_PROFILE"),
            load_duration=setting(env, "ULT_LOAD_DURATION"),
            load_rate=number(env, "ULT_LOAD_RATE", float),
            scenario=setting(env, "ULT_SCENARIO"),
            admin_writes_weight=_weight(env, "ULT_ADMIN_WRITES_WEIGHT"),
            write_tests=_write_tests(env, "ULT_WRITE_TESTS"),
            write_rate=_positive(env, "ULT_WRITE_RATE"),
            ecr_repository=setting(env, "ULT_ECR_REPOSITORY"),
            sensor_interval_s=_positive(env, "ULT_SENSOR_INTERVAL_S"),
            confirm_regressions=setting(env, "ULT_CONFIRM_REGRESSIONS") not in ("0", "false", "no"),
            sensor_budget_s=_budget(env, "ULT_SENSOR_BUDGET_S"),
            build_tag_pattern=_pattern(env, "ULT_BUILD_TAG_PATTERN"),
        )

    def run_config(self) -> dict:
        k6 = {"load_profile": self.load_profile}
        k6.update({k: v for k, v in {"duration": self.load_duration, "rate": self.load_rate,
                                      "scenario": self.scenario}.items() if v is not None})
        if self.admin_writes_weight:  # only when asked: a read-only `mixed` keeps its run config
            k6["admin_writes_weight"] = self.admin_writes_weight
        return {"ops": {
            "seeded_dataset": {"config": {"profile": self.dataset_profile, "seed": self.dataset_seed}},
            "k6_results": {"config": k6},
            "ab_confirmation": {"config": {"confirm": self.confirm_regressions}},
            # The write tests run under the read test's load profile and duration, at their own rate.
            "write_results": {"config": {
                "enabled": "admin_writes" in self.write_tests, "load_profile": self.load_profile,
                "rate": float(self.write_rate), **({"duration": self.load_duration} if self.load_duration else {})}},
            "roster_contention": {"config": {"enabled": "roster_contention" in self.write_tests}},
        }}


def markdown_table() -> str:
    """The README's table of environment variables, generated from the registry (a test keeps them equal)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for v in VARIABLES.values():
        default = f"`{v.default}`" if v.default is not None else ""
        lines.append(f"| `{v.name}` | {default} | {v.meaning}{' (secret)' if v.secret else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
