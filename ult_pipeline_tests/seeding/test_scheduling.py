"""How the seeder schedules its calls, against a fake client: never more than `concurrency` in
flight over all the stages running at once, a stage only after what it needs, no two calls
writing one class's roster at once, and nothing more sent once a call has failed."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.profiles import DatasetProfile
from ult_pipeline.seeding.seeder import Seeder
from ult_pipeline.target_api.client import GraphQLCallError

PROFILE = DatasetProfile("sched", 2, 3, 2, 6, 900)  # 150 students per class: 3 roster rounds


class FakeClient:
    def __init__(self, fail: str | None = None, pause_s: float = 0.002):
        self.calls = 0
        self.fail = fail
        self.pause_s = pause_s
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.log: list[tuple[str, str, list]] = []  # (event, operation, inputs)
        self.classes_in_flight: set[str] = set()
        self.roster_overlap = False

    def call(self, operation: str, variables: dict | None = None) -> dict:
        inputs = (variables or {}).get("input") or []
        roster = [e["classId"] for e in inputs if "studentIds" in e or "teacherIds" in e]
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.roster_overlap |= bool(self.classes_in_flight & set(roster))
            self.classes_in_flight |= set(roster)
            self.log.append(("start", operation, inputs))
        try:
            time.sleep(self.pause_s)
            if operation == self.fail:
                raise GraphQLCallError(operation, [{"message": "ERR_API_BAD_INPUT"}])
            return self.answer(operation, inputs)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.classes_in_flight -= set(roster)
                self.log.append(("end", operation, inputs))

    @staticmethod
    def answer(operation: str, inputs: list[dict]) -> dict:
        new = lambda: str(uuid.uuid4())  # noqa: E731
        if operation == "systemRoles":
            return {"rolesConnection": {"edges": [{"node": {"id": new(), "name": n}} for n in ("Student", "Teacher", "Organization Admin", "School Admin")]}}
        if operation == "createUsers":
            return {operation: {"users": [{"id": new(), "contactInfo": i["contactInfo"]} for i in inputs]}}
        if operation == "createOrganizations":
            return {operation: {"organizations": [{"id": new(), "name": i["organizationName"]} for i in inputs]}}
        if operation in ("createSchools", "createClasses"):
            key = operation.removeprefix("create").lower()
            return {operation: {key: [{"id": new(), "name": i["name"]} for i in inputs]}}
        return {operation: {}}


def started(client: FakeClient, operation: str) -> list[int]:
    return [n for n, (event, op, _) in enumerate(client.log) if event == "start" and op == operation]


def ended(client: FakeClient, operation: str) -> list[int]:
    return [n for n, (event, op, _) in enumerate(client.log) if event == "end" and op == operation]


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_calls_in_flight_never_exceed_the_concurrency_and_stages_wait_for_what_they_need(concurrency):
    client = FakeClient()
    result = Seeder(client, concurrency=concurrency).seed(generate(PROFILE, 1))
    assert 1 <= client.most_in_flight <= concurrency
    assert not client.roster_overlap
    # Every call of a stage starts after every call it depends on has answered.
    for later, earlier in [("createOrganizations", "createUsers"), ("createSchools", "createOrganizations"),
                           ("addUsersToOrganizations", "createOrganizations"), ("addClassesToSchools", "createClasses"),
                           ("addClassesToSchools", "createSchools"), ("addUsersToSchools", "createSchools"),
                           ("addStudentsToClasses", "createClasses"), ("addTeachersToClasses", "addStudentsToClasses")]:
        assert min(started(client, later)) > max(ended(client, earlier)), (later, earlier)
    # A school or class membership only once the organization memberships of its role are in.
    def org_members_done(role_id: str) -> int:
        return max(n for n, (event, op, inputs) in enumerate(client.log) if event == "end"
                   and op == "addUsersToOrganizations" and inputs[0]["organizationRoleIds"] == [role_id])

    for n, (event, op, inputs) in enumerate(client.log):
        if event == "start" and op == "addUsersToSchools":
            assert n > org_members_done(inputs[0]["schoolRoleIds"][0])
    student_role = next(inputs[0]["schoolRoleIds"][0] for _, op, inputs in client.log if op == "addUsersToSchools"
                        and len(inputs[0]["userIds"]) == 50)
    assert min(started(client, "addStudentsToClasses")) > org_members_done(student_role)
    assert {s.name for s in result.stages} >= {"addStudentsToClasses", "addUsersToSchools[Student]"}


def test_after_a_failed_call_nothing_more_is_sent_and_the_failure_is_raised():
    client = FakeClient(fail="addUsersToOrganizations")
    with pytest.raises(GraphQLCallError, match="addUsersToOrganizations"):
        Seeder(client, concurrency=4).seed(generate(PROFILE, 1))
    failed_at = min(n for n, (event, op, _) in enumerate(client.log)
                    if event == "end" and op == "addUsersToOrganizations")
    # Calls already past the gate (at most concurrency - 1 others) may still start and finish;
    # no other call is sent.
    late = [op for event, op, _ in client.log[failed_at:] if event == "start"]
    assert len(late) <= 3, late
    assert not started(client, "addUsersToSchools") and not started(client, "addStudentsToClasses")
