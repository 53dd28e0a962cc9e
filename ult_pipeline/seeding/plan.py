"""What seeding sends, built without a server: each stage's calls, packed by count and size.

The API refuses more than 50 elements per input array, the same organization, school or class
twice in one call, and (Express's JSON parser, before GraphQL) a request body above 100 KB.
A call is cut at whichever comes first, with the body kept within `BODY_BUDGET`, measured on
the exact bytes the client posts (`target_api.client.request_body`).

Stages need the ids the previous ones created; `plan` takes them all at once (for the real
seeding, the seeder builds each stage when the ids before it are known; for a check without a
server, `placeholder_ids` stands in).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cache

from ult_pipeline.seeding.batching import MAX_ELEMENTS, chunks, pack_rounds
from ult_pipeline.seeding.dataset import ORG_ADMIN, SCHOOL_ADMIN, STUDENT, TEACHER, Dataset
from ult_pipeline.target_api.client import request_body
from ult_pipeline.target_api.documents import document

STUDENT_ROLE, TEACHER_ROLE = "Student", "Teacher"
ORG_ADMIN_ROLE, SCHOOL_ADMIN_ROLE = "Organization Admin", "School Admin"
# The real service refuses JSON bodies above 100 KB (`express.json()`'s default, 102,400 bytes:
# HTTP 413 before GraphQL runs). Seeding keeps every body within the budget, a margin below it.
BODY_LIMIT = 100 * 1024
BODY_BUDGET = 90 * 1024
# Two elements of a list are separated by ", " in the body (json.dumps' default separators).
_SEPARATOR = 2


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
class StagePlan:
    """One stage's calls (each a list of input elements), in rounds.

    ``serial_rounds``: the mutation rewrites a list held by the element's key (a class's roster,
    a school's classes: the service reads the whole list, then saves it), so two calls naming
    the same key must not run at once (MUTATIONS.md, "Concurrency"): a round's calls name
    distinct keys and run together, the next round starts when they have all answered.
    Otherwise every call of every round may run at once.
    """

    name: str
    operation: str
    rounds: tuple[tuple[list[dict], ...], ...]
    serial_rounds: bool = False
    # Each call's request body in bytes, in the order of `calls` (as `body_size` measures it).
    body_sizes: tuple[int, ...] = ()

    @property
    def calls(self) -> list[list[dict]]:
        return [call for round_ in self.rounds for call in round_]

    @property
    def largest_body(self) -> int:
        return max(self.body_sizes, default=0)


@cache
def _base_size(operation: str) -> int:
    return len(request_body(document(operation), {"input": []}, operation))


def _element_size(element: dict) -> int:
    # As the client encodes it (json.dumps defaults, ASCII): the element's bytes inside the body.
    return len(json.dumps(element, allow_nan=False))


def body_size(operation: str, inputs: list[dict]) -> int:
    """Bytes of the request the client posts for ``operation`` with ``inputs``."""
    return len(request_body(document(operation), {"input": inputs}, operation))


def stage(name: str, operation: str, elements: list[dict], key: Callable[[dict], Hashable] | None = None,
          *, serial_rounds: bool = False, budget: int = BODY_BUDGET, spread: int = 1) -> StagePlan:
    """``elements`` packed into calls of at most 50, no ``key`` twice per call, each body
    within ``budget`` bytes. A stage of fewer than ``spread`` calls (the calls the seeder keeps
    in flight) is cut into smaller ones, up to about that many, so that they run at once; with
    ``serial_rounds``, each round is (its rounds run one after another)."""
    if not elements:
        # Nothing to send (e.g. a profile without admins): a stage of no calls.
        return StagePlan(name, operation, ())
    sizes = {id(e): _element_size(e) for e in elements}
    base = _base_size(operation)
    weigh = lambda e: sizes[id(e)]  # noqa: E731
    if serial_rounds:
        # Rounds run one after another: each needs `spread` calls of its own.
        rounds = pack_rounds(elements, key, MAX_ELEMENTS, weigh, budget - base, _SEPARATOR, spread)
    else:
        # Every round's calls run at once: only a stage of fewer calls in all is cut finer.
        rounds = pack_rounds(elements, key, MAX_ELEMENTS, weigh, budget - base, _SEPARATOR)
        calls = sum(len(r) for r in rounds)
        if calls < spread:
            rounds = pack_rounds(elements, key, MAX_ELEMENTS, weigh, budget - base, _SEPARATOR,
                                 -(-spread // len(rounds)))
    body_sizes = tuple(base + sum(sizes[id(e)] for e in call) + _SEPARATOR * (len(call) - 1)
                       for round_ in rounds for call in round_)
    return StagePlan(name, operation, tuple(tuple(r) for r in rounds), serial_rounds, body_sizes)


# --- each stage's elements, from the dataset and the ids known so far ---


def create_users(dataset: Dataset, spread: int = 1) -> StagePlan:
    inputs = [
        {
            "givenName": u.given_name, "familyName": u.family_name, "gender": u.gender,
            "dateOfBirth": u.date_of_birth, "contactInfo": {"email": u.email},
        }
        for u in dataset.users
    ]
    return stage("createUsers", "createUsers", inputs, spread=spread)


def create_organizations(dataset: Dataset, ids: SeededIds, spread: int = 1) -> StagePlan:
    inputs = [{"userId": ids.users[o.owner], "organizationName": o.name} for o in dataset.organizations]
    return stage("createOrganizations", "createOrganizations", inputs, spread=spread)


def create_schools(dataset: Dataset, ids: SeededIds, spread: int = 1) -> StagePlan:
    inputs = [
        {"organizationId": ids.organizations[s.organization], "name": s.name, "shortCode": s.short_code}
        for s in dataset.schools
    ]
    return stage("createSchools", "createSchools", inputs, spread=spread)


def create_classes(dataset: Dataset, ids: SeededIds, spread: int = 1) -> StagePlan:
    inputs = [{"organizationId": ids.organizations[c.organization], "name": c.name} for c in dataset.classes]
    return stage("createClasses", "createClasses", inputs, spread=spread)


def add_classes_to_schools(dataset: Dataset, ids: SeededIds, spread: int = 1) -> StagePlan:
    classes_of: dict[str, list[str]] = {}
    for c in dataset.classes:
        classes_of.setdefault(c.school, []).append(c.key)
    elements = [
        {"schoolId": ids.schools[s.key], "classIds": [ids.classes[k] for k in batch]}
        for s in dataset.schools for batch in chunks(classes_of.get(s.key, []))
    ]
    return stage("addClassesToSchools", "addClassesToSchools", elements, lambda e: e["schoolId"], serial_rounds=True,
                 spread=spread)


def _members(dataset: Dataset, role: str, group: Callable) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for user in dataset.users_with_role(role):
        members.setdefault(group(user), []).append(user.key)
    return members


# The system role each dataset role holds, on its organization membership and (those with a
# school) on its school membership. A School Admin's role is on the organization membership,
# as the real service's School Admins are seeded (MUTATIONS.md), and on its school's.
ROLES = {TEACHER: TEACHER_ROLE, STUDENT: STUDENT_ROLE, ORG_ADMIN: ORG_ADMIN_ROLE, SCHOOL_ADMIN: SCHOOL_ADMIN_ROLE}


def add_users_to_organization(dataset: Dataset, ids: SeededIds, role: str, spread: int = 1) -> StagePlan:
    """Members of one role (TEACHER, STUDENT, ORG_ADMIN or SCHOOL_ADMIN); owners are members
    already (createOrganizations). One call per role (API rule). Each membership is a row of
    its own: calls naming one organization may run at once."""
    role_name = ROLES[role]
    elements = [
        {"organizationId": ids.organizations[org], "organizationRoleIds": [ids.roles[role_name]],
         "userIds": [ids.users[k] for k in batch]}
        for org, keys in _members(dataset, role, lambda u: u.organization).items()
        for batch in chunks(keys)
    ]
    return stage(f"addUsersToOrganizations[{role_name}]", "addUsersToOrganizations", elements,
                 lambda e: e["organizationId"], spread=spread)


def add_users_to_school(dataset: Dataset, ids: SeededIds, role: str, spread: int = 1) -> StagePlan:
    """Members of one role with a school (TEACHER, STUDENT or SCHOOL_ADMIN)."""
    role_name = ROLES[role]
    elements = [
        {"schoolId": ids.schools[school], "schoolRoleIds": [ids.roles[role_name]],
         "userIds": [ids.users[k] for k in batch]}
        for school, keys in _members(dataset, role, lambda u: dataset.school_of[u.key]).items()
        for batch in chunks(keys)
    ]
    return stage(f"addUsersToSchools[{role_name}]", "addUsersToSchools", elements, lambda e: e["schoolId"],
                 spread=spread)


def add_students_to_classes(dataset: Dataset, ids: SeededIds, spread: int = 1) -> StagePlan:
    students = [
        {"classId": ids.classes[c], "studentIds": [ids.users[k] for k in batch]}
        for c, keys in dataset.students_of.items() for batch in chunks(keys)
    ]
    return stage("addStudentsToClasses", "addStudentsToClasses", students, lambda e: e["classId"], serial_rounds=True,
                 spread=spread)


def add_teachers_to_classes(dataset: Dataset, ids: SeededIds, spread: int = 1) -> StagePlan:
    teachers = [
        {"classId": ids.classes[c], "teacherIds": [ids.users[k] for k in batch]}
        for c, keys in dataset.teachers_of.items() for batch in chunks(keys) if keys
    ]
    return stage("addTeachersToClasses", "addTeachersToClasses", teachers, lambda e: e["classId"], serial_rounds=True,
                 spread=spread)


def plan(dataset: Dataset, ids: SeededIds, spread: int = 1) -> list[StagePlan]:
    """Every stage's calls given every id (`placeholder_ids` without a server), as a seeder
    keeping ``spread`` calls in flight sends them."""
    return [
        create_users(dataset, spread), create_organizations(dataset, ids, spread), create_schools(dataset, ids, spread),
        create_classes(dataset, ids, spread), add_classes_to_schools(dataset, ids, spread),
        add_users_to_organization(dataset, ids, TEACHER, spread), add_users_to_organization(dataset, ids, STUDENT, spread),
        add_users_to_organization(dataset, ids, ORG_ADMIN, spread),
        add_users_to_organization(dataset, ids, SCHOOL_ADMIN, spread),
        add_users_to_school(dataset, ids, TEACHER, spread), add_users_to_school(dataset, ids, STUDENT, spread),
        add_users_to_school(dataset, ids, SCHOOL_ADMIN, spread),
        add_students_to_classes(dataset, ids, spread), add_teachers_to_classes(dataset, ids, spread),
    ]


def placeholder_ids(dataset: Dataset) -> SeededIds:
    """Made-up UUIDs (deterministic, the length of real ones) for every entity and every role seeded."""
    def made_up(kind: str, keys) -> dict[str, str]:
        return {k: str(uuid.uuid5(uuid.NAMESPACE_URL, f"ult-plan:{kind}:{k}")) for k in keys}

    return SeededIds(
        users=made_up("user", [u.key for u in dataset.users]),
        organizations=made_up("organization", [o.key for o in dataset.organizations]),
        schools=made_up("school", [s.key for s in dataset.schools]),
        classes=made_up("class", [c.key for c in dataset.classes]),
        roles=made_up("role", list(ROLES.values())),
    )
