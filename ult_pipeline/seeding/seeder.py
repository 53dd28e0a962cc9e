"""Seeding a dataset through the service's GraphQL API, in the order the API accepts.

Calls within a stage do not depend on each other and are sent concurrently; stages run
in order because each needs the ids the previous one created.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ult_pipeline.seeding.batching import chunks, pack_unique
from ult_pipeline.seeding.dataset import STUDENT, TEACHER, Dataset
from ult_pipeline.target_api.client import GraphQLClient

STUDENT_ROLE, TEACHER_ROLE = "Student", "Teacher"


class SeedingError(RuntimeError):
    pass


@dataclass
class SeededIds:
    users: dict[str, str] = field(default_factory=dict)
    organizations: dict[str, str] = field(default_factory=dict)
    schools: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "users": self.users, "organizations": self.organizations, "schools": self.schools,
            "classes": self.classes, "roles": self.roles,
        }


@dataclass(frozen=True)
class StageTiming:
    name: str
    calls: int
    seconds: float


@dataclass(frozen=True)
class SeedResult:
    ids: SeededIds
    calls: int
    seconds: float
    stages: tuple[StageTiming, ...]

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def system_role_ids(client: GraphQLClient) -> dict[str, str]:
    # System roles get random ids when a database is first booted: always look them up.
    data = client.call("systemRoles")
    return {edge["node"]["name"]: edge["node"]["id"] for edge in data["rolesConnection"]["edges"]}


class Seeder:
    def __init__(self, client: GraphQLClient, concurrency: int = 4, log: Callable[[str], None] | None = None):
        if concurrency < 1:
            raise ValueError("seeding concurrency must be at least 1")
        self.client = client
        self.concurrency = concurrency
        self._log = log or (lambda _msg: None)
        self._stages: list[StageTiming] = []

    def _stage(self, name: str, operation: str, calls: list[list[dict]]) -> list[dict]:
        started = time.perf_counter()
        if self.concurrency == 1 or len(calls) <= 1:
            results = [self.client.call(operation, {"input": c}) for c in calls]
        else:
            with ThreadPoolExecutor(self.concurrency) as pool:
                results = list(pool.map(lambda c: self.client.call(operation, {"input": c}), calls))
        seconds = time.perf_counter() - started
        self._stages.append(StageTiming(name, len(calls), seconds))
        self._log(f"seeding: {name}: {len(calls)} calls in {seconds:.2f} s")
        return [r[operation] for r in results]

    def seed(self, dataset: Dataset) -> SeedResult:
        started = time.perf_counter()
        calls_before = self.client.calls
        self._stages = []
        ids = SeededIds(roles=system_role_ids(self.client))
        missing = {STUDENT_ROLE, TEACHER_ROLE} - ids.roles.keys()
        if missing:
            raise SeedingError(f"the service has no system role(s) {sorted(missing)}; is its system data in place?")

        self._create_users(dataset, ids)
        self._create_organizations(dataset, ids)
        with ThreadPoolExecutor(2) as pool:
            schools = pool.submit(self._create_schools, dataset, ids)
            classes = pool.submit(self._create_classes, dataset, ids)
            schools.result()
            classes.result()
        self._add_classes_to_schools(dataset, ids)
        self._add_users_to_organizations(dataset, ids)
        self._add_users_to_schools(dataset, ids)
        self._add_to_classes(dataset, ids)
        return SeedResult(
            ids=ids, calls=self.client.calls - calls_before, seconds=time.perf_counter() - started,
            stages=tuple(self._stages),
        )

    def _create_users(self, dataset: Dataset, ids: SeededIds) -> None:
        by_email = {u.email: u.key for u in dataset.users}
        inputs = [
            {
                "givenName": u.given_name, "familyName": u.family_name, "gender": u.gender,
                "dateOfBirth": u.date_of_birth, "contactInfo": {"email": u.email},
            }
            for u in dataset.users
        ]
        for result in self._stage("createUsers", "createUsers", chunks(inputs)):
            for user in result["users"]:
                ids.users[by_email[user["contactInfo"]["email"].lower()]] = user["id"]
        _require_all("users", by_email.values(), ids.users)

    def _create_organizations(self, dataset: Dataset, ids: SeededIds) -> None:
        by_name = {o.name: o.key for o in dataset.organizations}
        inputs = [{"userId": ids.users[o.owner], "organizationName": o.name} for o in dataset.organizations]
        for result in self._stage("createOrganizations", "createOrganizations", chunks(inputs)):
            for org in result["organizations"]:
                ids.organizations[by_name[org["name"]]] = org["id"]
        _require_all("organizations", by_name.values(), ids.organizations)

    def _create_schools(self, dataset: Dataset, ids: SeededIds) -> None:
        by_name = {s.name: s.key for s in dataset.schools}
        inputs = [
            {"organizationId": ids.organizations[s.organization], "name": s.name, "shortCode": s.short_code}
            for s in dataset.schools
        ]
        for result in self._stage("createSchools", "createSchools", chunks(inputs)):
            for school in result["schools"]:
                ids.schools[by_name[school["name"]]] = school["id"]
        _require_all("schools", by_name.values(), ids.schools)

    def _create_classes(self, dataset: Dataset, ids: SeededIds) -> None:
        by_name = {c.name: c.key for c in dataset.classes}
        inputs = [{"organizationId": ids.organizations[c.organization], "name": c.name} for c in dataset.classes]
        for result in self._stage("createClasses", "createClasses", chunks(inputs)):
            for cls in result["classes"]:
                ids.classes[by_name[cls["name"]]] = cls["id"]
        _require_all("classes", by_name.values(), ids.classes)

    def _add_classes_to_schools(self, dataset: Dataset, ids: SeededIds) -> None:
        elements = [
            {"schoolId": ids.schools[s.key], "classIds": [ids.classes[c.key] for c in dataset.classes if c.school == s.key]}
            for s in dataset.schools
        ]
        self._stage("addClassesToSchools", "addClassesToSchools", pack_unique(elements, lambda e: e["schoolId"]))

    def _members(self, dataset: Dataset, role: str, group: Callable) -> dict[str, list[str]]:
        members: dict[str, list[str]] = {}
        for user in dataset.users_with_role(role):
            members.setdefault(group(user), []).append(user.key)
        return members

    def _add_users_to_organizations(self, dataset: Dataset, ids: SeededIds) -> None:
        # Owners are members already (createOrganizations); one call per role (API rule).
        for role, role_name in ((TEACHER, TEACHER_ROLE), (STUDENT, STUDENT_ROLE)):
            elements = [
                {"organizationId": ids.organizations[org], "organizationRoleIds": [ids.roles[role_name]],
                 "userIds": [ids.users[k] for k in batch]}
                for org, keys in self._members(dataset, role, lambda u: u.organization).items()
                for batch in chunks(keys)
            ]
            self._stage(f"addUsersToOrganizations[{role_name}]", "addUsersToOrganizations",
                        pack_unique(elements, lambda e: e["organizationId"]))

    def _add_users_to_schools(self, dataset: Dataset, ids: SeededIds) -> None:
        for role, role_name in ((TEACHER, TEACHER_ROLE), (STUDENT, STUDENT_ROLE)):
            elements = [
                {"schoolId": ids.schools[school], "schoolRoleIds": [ids.roles[role_name]],
                 "userIds": [ids.users[k] for k in batch]}
                for school, keys in self._members(dataset, role, lambda u: dataset.school_of[u.key]).items()
                for batch in chunks(keys)
            ]
            self._stage(f"addUsersToSchools[{role_name}]", "addUsersToSchools",
                        pack_unique(elements, lambda e: e["schoolId"]))

    def _add_to_classes(self, dataset: Dataset, ids: SeededIds) -> None:
        students = [
            {"classId": ids.classes[c], "studentIds": [ids.users[k] for k in batch]}
            for c, keys in dataset.students_of.items() for batch in chunks(keys)
        ]
        teachers = [
            {"classId": ids.classes[c], "teacherIds": [ids.users[k] for k in batch]}
            for c, keys in dataset.teachers_of.items() for batch in chunks(keys) if keys
        ]
        self._stage("addStudentsToClasses", "addStudentsToClasses", pack_unique(students, lambda e: e["classId"]))
        self._stage("addTeachersToClasses", "addTeachersToClasses", pack_unique(teachers, lambda e: e["classId"]))


def _require_all(what: str, keys, found: dict[str, str]) -> None:
    missing = [k for k in keys if k not in found]
    if missing:
        raise SeedingError(f"the service did not return ids for {len(missing)} {what} (first: {missing[:3]})")


def read_counts(client: GraphQLClient, dataset: Dataset, ids: SeededIds) -> dict[str, int]:
    """Counts read back through the API, summed over the dataset's organizations."""
    totals = {"organizations": 0, "schools": 0, "classes": 0, "teachers": 0, "students": 0, "users": 0}
    for org in dataset.organizations:
        data = client.call("seededCounts", {
            "organizationId": ids.organizations[org.key],
            "studentRoleId": ids.roles[STUDENT_ROLE], "teacherRoleId": ids.roles[TEACHER_ROLE],
        })
        for name in totals:
            totals[name] += data[name]["totalCount"]
    return totals

