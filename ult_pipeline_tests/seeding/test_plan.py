"""Every call seeding sends fits the real service's body limit, whatever the profile:
the plan is built without a server (placeholder ids of real length) and each body is
measured as the client posts it."""

from __future__ import annotations

import json

import pytest

from ult_pipeline.seeding import plan
from ult_pipeline.seeding.batching import MAX_ELEMENTS
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.profiles import PROFILES, DatasetProfile
from ult_pipeline.target_api.client import request_body
from ult_pipeline.target_api.documents import document

KEYS = {"addClassesToSchools": "schoolId", "addUsersToOrganizations": "organizationId",
        "addUsersToSchools": "schoolId", "addStudentsToClasses": "classId", "addTeachersToClasses": "classId"}
LISTS = ("userIds", "studentIds", "teacherIds", "classIds", "organizationRoleIds", "schoolRoleIds")


def sent_body(operation: str, inputs: list[dict]) -> bytes:
    # What requests would post with json=: json.dumps of {query, variables, operationName}.
    return json.dumps({"query": document(operation), "variables": {"input": inputs},
                       "operationName": operation}).encode()


def check_plan(dataset, spread: int = 1) -> list[plan.StagePlan]:
    stages = plan.plan(dataset, plan.placeholder_ids(dataset), spread)
    for stage in stages:
        assert len(stage.body_sizes) == len(stage.calls)
        for call, planned_size in zip(stage.calls, stage.body_sizes, strict=True):
            body = request_body(document(stage.operation), {"input": call}, stage.operation)
            assert body == sent_body(stage.operation, call)
            assert len(body) == plan.body_size(stage.operation, call) == planned_size
            assert len(body) <= plan.BODY_BUDGET < plan.BODY_LIMIT, (stage.name, len(body))
            assert 1 <= len(call) <= MAX_ELEMENTS
            for element in call:
                for name in LISTS:
                    assert len(element.get(name, [])) <= MAX_ELEMENTS
            if stage.operation in KEYS:
                keys = [e[KEYS[stage.operation]] for e in call]
                assert len(keys) == len(set(keys)), stage.name
        if stage.serial_rounds:
            for round_ in stage.rounds:
                keys = [e[KEYS[stage.operation]] for call in round_ for e in call]
                assert len(keys) == len(set(keys)), stage.name
    return stages


def test_every_body_of_the_large_profile_fits_the_limit_and_nothing_is_lost():
    dataset = generate(PROFILES["large"], 1)
    stages = check_plan(dataset)
    by_name = {s.name: s for s in stages}
    created = {s.operation: sum(len(c) for c in s.calls) for s in stages if s.operation.startswith("create")}
    assert created == {"createUsers": len(dataset.users), "createOrganizations": 10, "createSchools": 100,
                       "createClasses": 400}
    linked = sum(len(e["userIds"]) for c in by_name["addUsersToSchools[Student]"].calls for e in c)
    assert linked == PROFILES["large"].students
    rostered = sum(len(e["studentIds"]) for c in by_name["addStudentsToClasses"].calls for e in c)
    assert rostered == PROFILES["large"].students
    # The call that failed live (50 inputs of 50 ids) is over the limit as the old packing built it.
    school_calls = by_name["addUsersToSchools[Student]"].calls
    assert plan.body_size("addUsersToSchools", [e for c in school_calls for e in c][:50]) > plan.BODY_LIMIT
    # Cut by size, the calls stay nearly full.
    assert max(len(c) for c in school_calls) >= 40


@pytest.mark.parametrize("profile", [
    *PROFILES.values(),
    # Every list at its longest: 50 ids per element, many schools and classes per organization.
    DatasetProfile("wide", 2, 60, 60, 200, 20_000),
], ids=lambda p: p.name)
@pytest.mark.parametrize("spread", [1, 4, 8])
def test_every_body_of_every_profile_fits_the_limit(profile, spread):
    dataset = generate(profile, 3)
    stages = check_plan(dataset, spread)
    # Cut finer for concurrency, nothing is lost or repeated.
    assert sum(len(c) for c in stages[0].calls) == len(dataset.users)
    rostered = sorted(i for s in stages if s.operation == "addStudentsToClasses"
                      for c in s.calls for e in c for i in e["studentIds"])
    assert len(rostered) == len(set(rostered)) == profile.students
    # Enough calls to keep `spread` in flight (at least half as many, when there are elements
    # enough), per round where rounds run one after another; never more calls than that needs.
    unspread = {s.name: len(s.calls) for s in plan.plan(dataset, plan.placeholder_ids(dataset))}
    for s in stages:
        groups = s.rounds if s.serial_rounds else (tuple(c for r in s.rounds for c in r),)
        for group in groups:
            if sum(len(c) for c in group) >= spread:
                assert len(group) >= spread / 2, (s.name, [len(c) for c in group])
        if not s.serial_rounds and unspread[s.name] >= spread:
            assert len(s.calls) == unspread[s.name], s.name


def test_an_element_too_big_for_any_call_is_refused_at_planning():
    huge = [{"schoolId": "s", "classIds": ["x" * 100_000]}]
    with pytest.raises(ValueError, match="more than a whole call"):
        plan.stage("addClassesToSchools", "addClassesToSchools", huge, lambda e: e["schoolId"])


def test_admins_get_their_roles_on_their_memberships():
    dataset = generate(PROFILES["standard"], 2)
    ids = plan.placeholder_ids(dataset)
    by_name = {s.name: s for s in plan.plan(dataset, ids)}
    admin_of = {"Organization Admin": "org_admin", "School Admin": "school_admin"}
    for role, kind in admin_of.items():
        elements = [e for c in by_name[f"addUsersToOrganizations[{role}]"].calls for e in c]
        assert all(e["organizationRoleIds"] == [ids.roles[role]] for e in elements)
        assert sorted(u for e in elements for u in e["userIds"]) == sorted(
            ids.users[u.key] for u in dataset.users_with_role(kind))
    # School admins only are members of a school, with the School Admin role there too.
    school_elements = [e for c in by_name["addUsersToSchools[School Admin]"].calls for e in c]
    assert {(e["schoolId"], u) for e in school_elements for u in e["userIds"]} == {
        (ids.schools[dataset.school_of[u.key]], ids.users[u.key]) for u in dataset.users_with_role("school_admin")}
    assert all(e["schoolRoleIds"] == [ids.roles["School Admin"]] for e in school_elements)
    assert "addUsersToSchools[Organization Admin]" not in by_name


def test_a_profile_without_admins_plans_no_admin_calls():
    dataset = generate(DatasetProfile("plain", 1, 2, 2, 5, 100, 0, 0), 1)
    for spread in (1, 4):
        stages = {s.name: s for s in plan.plan(dataset, plan.placeholder_ids(dataset), spread)}
        for name in ("addUsersToOrganizations[Organization Admin]", "addUsersToOrganizations[School Admin]",
                     "addUsersToSchools[School Admin]"):
            assert stages[name].calls == [] and stages[name].largest_body == 0
