"""The write scenarios' options as k6 reads them (`k6 inspect`), and their fail-fast validation.

admin_writes, roster_contention and `mixed` with a writes weight: executor and rate, per-operation
thresholds, the batch options contention needs, and clear refusals (bad values, an identities file
without administrators), all without any network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ult_pipeline.loadtest.profiles import LoadProfile
from ult_pipeline_tests.k6.test_suite_static import (
    ADMIN_WRITES_OPERATIONS,
    CONTENTION_OPERATIONS,
    K6,
    STUDENT_OPERATIONS,
    TEACHER_OPERATIONS,
    _assert_contract_thresholds,
    _inspect,
)

pytestmark = pytest.mark.skipif(not K6.is_file(), reason=f"k6 binary not found at {K6}")

ORG = "10000000-0000-0000-0000-000000000001"
SCHOOL = "20000000-0000-0000-0000-000000000001"


def _identity(n: int, role: str, *, org: str = ORG, school: str | None = SCHOOL) -> dict:
    return {"user_id": f"00000000-0000-0000-0000-{n:012d}", "role": role, "email": f"{role}{n}@example.test",
            "organization_id": org, "school_id": school, "class_ids": [], "token": f"token-{n}"}


def _write(path: Path, identities: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 1, "dataset_hash": "test", "identities": identities}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def with_admins(tmp_path_factory) -> Path:
    people = [_identity(i, "student") for i in range(1, 21)]
    people += [_identity(100, "teacher"), _identity(200, "org_admin", school=None), _identity(300, "school_admin")]
    return _write(tmp_path_factory.mktemp("k6w") / "identities.json", people)


def _env(identities: Path, **env: str) -> dict[str, str]:
    return {"ULT_TARGET_URL": "http://127.0.0.1:9/user/", "ULT_IDENTITIES": str(identities), **env}


def _options(identities: Path, **env: str) -> dict:
    return json.loads(_inspect(_env(identities, **env)).stdout)


def _refused(identities: Path, **env: str) -> str:
    result = _inspect(_env(identities, **env), check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr


def test_admin_writes_runs_at_a_constant_rate_with_thresholds_per_mutation(with_admins):
    options = _options(with_admins, ULT_SCENARIO="admin_writes", ULT_RATE="3", ULT_DURATION="30s")
    ((name, scenario),) = options["scenarios"].items()
    assert name == "admin_writes"
    assert (scenario["executor"], scenario["exec"], scenario["rate"], scenario["timeUnit"], scenario["duration"]) == (
        "constant-arrival-rate", "adminWrites", 3, "1s", "30s")
    _assert_contract_thresholds(options["thresholds"], ADMIN_WRITES_OPERATIONS)
    for operation in ADMIN_WRITES_OPERATIONS:
        assert options["thresholds"][f"graphql_errors{{operation:{operation}}}"] == ["rate<0.01"]


def test_roster_contention_sends_its_writers_at_once(with_admins):
    options = _options(with_admins, ULT_SCENARIO="roster_contention", ULT_RATE="2", ULT_CONTENTION_WRITERS="12")
    ((name, scenario),) = options["scenarios"].items()
    assert (name, scenario["exec"], scenario["rate"]) == ("roster_contention", "rosterContention", 2)
    assert options["batchPerHost"] == 12 and options["batch"] >= 12
    _assert_contract_thresholds(options["thresholds"], CONTENTION_OPERATIONS)
    default = _options(with_admins, ULT_SCENARIO="roster_contention")
    assert default["batchPerHost"] == 10  # ULT_CONTENTION_WRITERS defaults to 10


def test_mixed_is_read_only_unless_given_a_writes_weight(with_admins):
    plain = _options(with_admins, ULT_SCENARIO="mixed")
    assert set(plain["scenarios"]) == {"student_landing", "teacher"}
    assert "batchPerHost" not in plain or plain["batchPerHost"] is None
    weighted = _options(with_admins, ULT_SCENARIO="mixed", ULT_STUDENT_WEIGHT="70", ULT_TEACHER_WEIGHT="20",
                        ULT_ADMIN_WRITES_WEIGHT="10", ULT_RATE="20")
    assert {n: s["rate"] for n, s in weighted["scenarios"].items()} == {
        "student_landing": 14, "teacher": 4, "admin_writes": 2}
    assert weighted["scenarios"]["admin_writes"]["exec"] == "adminWrites"
    _assert_contract_thresholds(weighted["thresholds"],
                                STUDENT_OPERATIONS + TEACHER_OPERATIONS + ADMIN_WRITES_OPERATIONS)


@pytest.mark.parametrize("env,message", [
    ({"ULT_SCENARIO": "writes"}, "ULT_SCENARIO must be one of"),
    ({"ULT_SCENARIO": "roster_contention", "ULT_CONTENTION_WRITERS": "1"}, "ULT_CONTENTION_WRITERS must be an integer from 2 to 50"),
    ({"ULT_SCENARIO": "roster_contention", "ULT_CONTENTION_WRITERS": "51"}, "ULT_CONTENTION_WRITERS must be an integer from 2 to 50"),
    ({"ULT_SCENARIO": "roster_contention", "ULT_CONTENTION_WRITERS": "ten"}, "ULT_CONTENTION_WRITERS must be an integer"),
    ({"ULT_SCENARIO": "mixed", "ULT_ADMIN_WRITES_WEIGHT": "-1"}, "ULT_ADMIN_WRITES_WEIGHT must be an integer"),
    ({"ULT_SCENARIO": "mixed", "ULT_STUDENT_WEIGHT": "0", "ULT_TEACHER_WEIGHT": "0"}, "are all 0"),
    # More writers than the organization has students: each writer adds a distinct student.
    ({"ULT_SCENARIO": "roster_contention", "ULT_CONTENTION_WRITERS": "21"}, "21 students"),
])
def test_bad_write_settings_stop_k6_naming_the_variable(with_admins, env, message):
    assert message in _refused(with_admins, **env)


@pytest.mark.parametrize("scenario", ["admin_writes", "roster_contention"])
def test_a_write_scenario_without_administrators_fails_fast(tmp_path, scenario):
    readers = _write(tmp_path / "readers.json", [_identity(1, "student"), _identity(2, "teacher")])
    stderr = _refused(readers, ULT_SCENARIO=scenario)
    assert "no identity with role" in stderr and "org_admin" in stderr


def test_admin_writes_needs_an_org_admin_of_the_school_admins_organization(tmp_path):
    people = [_identity(i, "student") for i in range(1, 6)] + [_identity(100, "teacher"), _identity(300, "school_admin"),
              _identity(200, "org_admin", org="10000000-0000-0000-0000-000000000002", school=None)]
    stderr = _refused(_write(tmp_path / "apart.json", people), ULT_SCENARIO="admin_writes")
    assert "no organization has an org_admin" in stderr and "admin_writes" in stderr


def test_a_read_scenario_needs_no_administrators(tmp_path):
    readers = _write(tmp_path / "readers.json", [_identity(1, "student"), _identity(2, "teacher")])
    assert set(_options(readers, ULT_SCENARIO="mixed")["scenarios"]) == {"student_landing", "teacher"}


@pytest.mark.parametrize("profile", [
    LoadProfile(scenario="admin_writes", rate=3, duration="30s", pre_allocated_vus=5, max_vus=50),
    LoadProfile(scenario="roster_contention", rate=2, duration="20s", pre_allocated_vus=4, max_vus=20,
                contention_writers=15),
    LoadProfile(scenario="mixed", rate=20, student_weight=70, teacher_weight=20, admin_writes_weight=10),
])
def test_python_passes_the_write_profiles_whole(with_admins, profile):
    options = _options(with_admins, **profile.k6_env())
    rates = {name: s["rate"] for name, s in options["scenarios"].items()}
    assert sum(rates.values()) == profile.rate
    if profile.scenario == "roster_contention":
        assert options["batchPerHost"] == profile.contention_writers
    if profile.scenario == "mixed":
        assert "admin_writes" in rates


def test_python_knows_the_suites_mutations():
    """LoadTestResult.writes lists these operations: they must be the ones the k6 suite sends."""
    from ult_pipeline.loadtest.profiles import WRITE_OPERATIONS

    assert sorted(WRITE_OPERATIONS) == sorted(ADMIN_WRITES_OPERATIONS)
    assert set(CONTENTION_OPERATIONS) <= set(WRITE_OPERATIONS)


@pytest.mark.parametrize("rate, weights", [(22, (80, 20, 10)), (10, (1, 1, 0)), (7, (70, 20, 10)), (40, (1, 2, 3)),
                                           (6, (80, 20, 10))])
def test_pythons_split_of_mixed_is_k6s(with_admins, rate, weights):
    from ult_pipeline.loadtest.profiles import split_by_weight

    student, teacher, writes = weights
    options = _options(with_admins, ULT_SCENARIO="mixed", ULT_RATE=str(rate), ULT_STUDENT_WEIGHT=str(student),
                       ULT_TEACHER_WEIGHT=str(teacher), ULT_ADMIN_WRITES_WEIGHT=str(writes))
    names = [n for n, w in zip(("student_landing", "teacher", "admin_writes"), weights, strict=True) if w > 0]
    assert [options["scenarios"][n]["rate"] for n in names] == split_by_weight(rate, [w for w in weights if w > 0])


def test_mixed_slower_than_one_iteration_per_journey_is_refused_by_python_and_by_k6(with_admins):
    with pytest.raises(ValueError, match=r"mixed at 3 iterations/s .*it would run 4/s\): raise the rate to at least 6"):
        LoadProfile(scenario="mixed", rate=3, admin_writes_weight=10)
    refused = _refused(with_admins, ULT_SCENARIO="mixed", ULT_RATE="3", ULT_ADMIN_WRITES_WEIGHT="10")
    assert "ULT_RATE=3 cannot give each of its 3 journeys" in refused and "it would run 4/s" in refused
