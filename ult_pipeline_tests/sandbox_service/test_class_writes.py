"""Class and roster writes as the real user-service 4.5.0 does them (MUTATIONS.md): createClasses,
updateClasses, deleteClasses, add/remove students and teachers, move students/teachers, and the
`--roster-writes` knob (unlocked: 4.5.0's lost roster writes; locked, the default: none lost)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import pytest
import requests

from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline.sandbox_service.__main__ import build_parser, config_from_args
from ult_pipeline.sandbox_service.app import create_app
from ult_pipeline.sandbox_service.config import ServiceConfig

from .conftest import API_KEY, Service, ThreadedServer, make_token
from .test_mutations import bad_input_errors
from .world import (
    ADD_CLASSES_TO_SCHOOLS,
    ADD_USERS_TO_ORGANIZATIONS,
    CREATE_ORGANIZATIONS,
    CREATE_SCHOOLS,
    CREATE_USERS,
    system_roles,
    user_input,
)

CREATE_CLASSES = """
mutation CreateClasses($input: [CreateClassInput!]!) {
  createClasses(input: $input) { classes { id name status shortCode } }
}"""

UPDATE_CLASSES = """
mutation UpdateClasses($input: [UpdateClassInput!]!) {
  updateClasses(input: $input) { classes { id name status shortCode } }
}"""

DELETE_CLASSES = """
mutation DeleteClasses($input: [DeleteClassInput!]!) {
  deleteClasses(input: $input) { classes { id name status } }
}"""

ROSTER_FIELDS = "classes { id status studentsConnection { totalCount } teachersConnection { totalCount } }"
ADD_STUDENTS = f"""
mutation AddStudents($input: [AddStudentsToClassInput!]!) {{ addStudentsToClasses(input: $input) {{ {ROSTER_FIELDS} }} }}"""
ADD_TEACHERS = f"""
mutation AddTeachers($input: [AddTeachersToClassInput!]!) {{ addTeachersToClasses(input: $input) {{ {ROSTER_FIELDS} }} }}"""
REMOVE_STUDENTS = f"""
mutation RemoveStudents($input: [RemoveStudentsFromClassInput!]!) {{
  removeStudentsFromClasses(input: $input) {{ {ROSTER_FIELDS} }}
}}"""
REMOVE_TEACHERS = f"""
mutation RemoveTeachers($input: [RemoveTeachersFromClassInput!]!) {{
  removeTeachersFromClasses(input: $input) {{ {ROSTER_FIELDS} }}
}}"""

MOVE_FIELDS = """
  fromClass { id status studentsConnection { totalCount } teachersConnection { totalCount } }
  toClass { id status studentsConnection { totalCount } teachersConnection { totalCount } }"""
MOVE_STUDENTS = f"""
mutation MoveStudents($input: MoveUsersToClassInput) {{ moveStudentsToClass(input: $input) {{ {MOVE_FIELDS} }} }}"""
MOVE_TEACHERS = f"""
mutation MoveTeachers($input: MoveUsersToClassInput) {{ moveTeachersToClass(input: $input) {{ {MOVE_FIELDS} }} }}"""

CLASS_NODE = """
query ClassNode($id: ID!) {
  classNode(id: $id) {
    id name status shortCode
    studentsConnection(count: 50) { totalCount edges { node { id } } }
    teachersConnection(count: 50) { totalCount edges { node { id } } }
    schoolsConnection { totalCount }
  }
}"""

CLASSES_BY_ID = """
query ClassesById($org: UUID!, $id: UUID!) {
  classesConnection(direction: FORWARD, directionArgs: { count: 50 }, filter: {
    organizationId: { operator: eq, value: $org }, id: { operator: eq, value: $id } }) {
    edges { node { id status } }
  }
}"""

ME_CLASSES_STUDYING = "query MeClassesStudying { me { classesStudying { class_id status } } }"

ADD_USERS_TO_SCHOOLS = """
mutation AddUsersToSchools($input: [AddUsersToSchoolInput!]!) {
  addUsersToSchools(input: $input) { schools { id } }
}"""


@dataclass(frozen=True)
class ClassWorld:
    org: str
    other_org: str
    school1: str
    school2: str
    other_school: str
    owner: str
    school_admin: str
    teacher: str
    teacher2: str
    students: list[str]
    crowd: list[str]
    stranger: str
    tokens: dict[str, str]


def _users(service, labels: list[str], tag: str) -> dict[str, str]:
    created = service.data(
        CREATE_USERS, {"input": [user_input(label.title(), f"{label}.{tag}@example.test") for label in labels]},
        admin=True,
    )["createUsers"]["users"]
    return {label: user["id"] for label, user in zip(labels, created, strict=True)}


@pytest.fixture(scope="module")
def cw(service) -> ClassWorld:
    """Organization A: owner (Organization Admin), a School Admin (role on the organization
    membership, as seeded), two teachers, four students, twenty more students (the crowd);
    schools 1 and 2. Organization B (its own school). A stranger with no membership."""
    tag = uuid.uuid4().hex[:8]
    labels = ["owner", "schooladmin", "teacher", "teacher2", "s0", "s1", "s2", "s3", "stranger", "otherowner"]
    ids = _users(service, labels, tag)
    crowd = list(_users(service, [f"crowd{i}" for i in range(20)], tag).values())
    roles = system_roles(service)
    orgs = service.data(CREATE_ORGANIZATIONS, {"input": [
        {"userId": ids["owner"], "organizationName": f"CW A {tag}"},
        {"userId": ids["otherowner"], "organizationName": f"CW B {tag}"},
    ]}, admin=True)["createOrganizations"]["organizations"]
    org, other_org = orgs[0]["id"], orgs[1]["id"]
    schools = service.data(CREATE_SCHOOLS, {"input": [
        {"organizationId": org, "name": f"CW S1 {tag}"},
        {"organizationId": org, "name": f"CW S2 {tag}"},
        {"organizationId": other_org, "name": f"CW SB {tag}"},
    ]}, admin=True)["createSchools"]["schools"]
    students = [ids[f"s{i}"] for i in range(4)]
    for role, users in (
        ("School Admin", [ids["schooladmin"]]),
        ("Teacher", [ids["teacher"], ids["teacher2"]]),
        ("Student", students + crowd),
    ):
        service.data(ADD_USERS_TO_ORGANIZATIONS, {"input": [
            {"organizationId": org, "organizationRoleIds": [roles[role]], "userIds": users}]}, admin=True)
    tokens = {
        name: make_token(ids[label], f"{label}.{tag}@example.test")
        for name, label in (("owner", "owner"), ("school_admin", "schooladmin"), ("teacher", "teacher"),
                            ("student", "s0"), ("other_owner", "otherowner"))
    }
    return ClassWorld(
        org=org, other_org=other_org, school1=schools[0]["id"], school2=schools[1]["id"],
        other_school=schools[2]["id"], owner=ids["owner"], school_admin=ids["schooladmin"],
        teacher=ids["teacher"], teacher2=ids["teacher2"], students=students, crowd=crowd,
        stranger=ids["stranger"], tokens=tokens,
    )


def new_classes(service, org: str, count: int = 1, *, school: str | None = None) -> list[str]:
    created = service.data(CREATE_CLASSES, {"input": [
        {"organizationId": org, "name": f"Class {uuid.uuid4().hex[:10]}"} for _ in range(count)
    ]}, admin=True)["createClasses"]["classes"]
    ids = [c["id"] for c in created]
    if school:
        service.data(ADD_CLASSES_TO_SCHOOLS, {"input": [{"schoolId": school, "classIds": ids}]}, admin=True)
    return ids


def new_class(service, org: str, *, school: str | None = None) -> str:
    return new_classes(service, org, school=school)[0]


def class_node(service, class_id: str) -> dict:
    return service.data(CLASS_NODE, {"id": class_id}, admin=True)["classNode"]


def roster(service, class_id: str, who: str = "students") -> set[str]:
    return {edge["node"]["id"] for edge in class_node(service, class_id)[f"{who}Connection"]["edges"]}


def internal_error(errors: list[dict]) -> dict:
    """The single INTERNAL_SERVER_ERROR refusal (permission, outer length, malformed UUID, failed save)."""
    assert len(errors) == 1, errors
    assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", errors
    return errors[0]


def codes(problems: list[dict]) -> list[tuple[str, int | None]]:
    return [(p["code"], p["index"]) for p in problems]


def add(service, document: str, class_id: str, users: list[str], **auth) -> dict:
    key = "studentIds" if "Students" in document else "teacherIds"
    return service.post(document, {"input": [{"classId": class_id, key: users}]}, **(auth or {"admin": True})).json()


# --- one valid element per list mutation (for the length and permission tests) ---


def element(cw: ClassWorld, service, mutation: str) -> dict:
    if mutation == "createClasses":
        return {"organizationId": cw.org, "name": f"Class {uuid.uuid4().hex[:10]}"}
    class_id = new_class(service, cw.org)
    if mutation == "updateClasses":
        return {"classId": class_id, "className": f"Renamed {uuid.uuid4().hex[:10]}"}
    if mutation == "deleteClasses":
        return {"id": class_id}
    if mutation in ("addStudentsToClasses", "removeStudentsFromClasses"):
        if mutation.startswith("remove"):
            add(service, ADD_STUDENTS, class_id, [cw.students[0]])
        return {"classId": class_id, "studentIds": [cw.students[0]]}
    if mutation.startswith("remove"):
        add(service, ADD_TEACHERS, class_id, [cw.teacher])
    return {"classId": class_id, "teacherIds": [cw.teacher]}


LIST_MUTATIONS = {
    "createClasses": (CREATE_CLASSES, "create_class_20224"),
    "updateClasses": (UPDATE_CLASSES, "edit_class_20334"),
    "deleteClasses": (DELETE_CLASSES, "delete_class_20444"),
    "addStudentsToClasses": (ADD_STUDENTS, "add_students_to_class_20225"),
    "addTeachersToClasses": (ADD_TEACHERS, "add_teachers_to_class_20226"),
    "removeStudentsFromClasses": (REMOVE_STUDENTS, "delete_student_from_class_roster_20445"),
    "removeTeachersFromClasses": (REMOVE_TEACHERS, "delete_teacher_from_class_20446"),
}


@pytest.mark.parametrize("mutation", sorted(LIST_MUTATIONS))
def test_input_holds_1_to_50_elements(service, cw, mutation):
    document, _ = LIST_MUTATIONS[mutation]
    one = element(cw, service, mutation)
    for elements, code in (([], "ERR_INVALID_ARRAY_MIN_LENGTH"), ([one] * 51, "ERR_INVALID_ARRAY_MAX_LENGTH")):
        error = internal_error(service.errors(document, {"input": elements}, admin=True))
        assert error["extensions"]["exception"]["code"] == code
    if "classId" in one:
        assert class_node(service, one["classId"])["status"] == "active"  # nothing written


@pytest.mark.parametrize("mutation", [m for m in sorted(LIST_MUTATIONS) if "Students" in m or "Teachers" in m])
def test_nested_id_lists_hold_1_to_50_ids(service, cw, mutation):
    document, _ = LIST_MUTATIONS[mutation]
    one = element(cw, service, mutation)
    key = "studentIds" if "studentIds" in one else "teacherIds"
    before = class_node(service, one["classId"])
    for ids, code in (([], "ERR_INVALID_ARRAY_MIN_LENGTH"), ([str(uuid.uuid4()) for _ in range(51)],
                                                              "ERR_INVALID_ARRAY_MAX_LENGTH")):
        problems = bad_input_errors(service.errors(document, {"input": [{**one, key: ids}]}, admin=True))
        assert (code, 0) in codes(problems)
    assert class_node(service, one["classId"]) == before


@pytest.mark.parametrize("mutation", sorted(LIST_MUTATIONS))
@pytest.mark.parametrize("caller", ["teacher", "student", "school_admin", "owner"])
def test_who_may_call_each_list_mutation(service, cw, mutation, caller):
    """MUTATIONS.md's table: Org Admin may call all; School Admin all but deleteClasses; Teacher and
    Student none (not even on their own class)."""
    document, permission = LIST_MUTATIONS[mutation]
    one = element(cw, service, mutation)
    user = {"teacher": cw.teacher, "student": cw.students[0], "school_admin": cw.school_admin, "owner": cw.owner}[caller]
    if caller == "teacher" and "classId" in one and "Teachers" not in mutation:
        add(service, ADD_TEACHERS, one["classId"], [user])  # their own class: no "own class" rule
    allowed = caller == "owner" or (caller == "school_admin" and mutation != "deleteClasses")
    response = service.post(document, {"input": [one]}, token=cw.tokens[caller]).json()
    if allowed:
        assert "errors" not in response, response
        return
    error = internal_error(response["errors"])
    assert error["message"] == f"User({user}) does not have Permission({permission}) in Organizations({cw.org})"
    assert response["data"] == {mutation: None}
    if "classId" in one or "id" in one:
        class_id = one.get("classId") or one["id"]
        node = class_node(service, class_id)
        assert node["status"] == "active" and not node["name"].startswith("Renamed")


@pytest.mark.parametrize("document, permission", [
    (MOVE_STUDENTS, "move_students_to_another_class_20335"),
    (MOVE_TEACHERS, "move_teachers_to_another_class_20340"),
])
@pytest.mark.parametrize("caller", ["teacher", "student", "school_admin", "owner", "api_key"])
def test_who_may_move_users(service, cw, document, permission, caller):
    source, destination = new_classes(service, cw.org, 2, school=cw.school1)
    students = "Students" in document
    user = cw.students[1] if students else cw.teacher2
    add(service, ADD_STUDENTS if students else ADD_TEACHERS, source, [user])
    auth = {"admin": True} if caller == "api_key" else {"token": cw.tokens[caller]}
    response = service.post(document, {"input": {"fromClassId": source, "toClassId": destination, "userIds": [user]}},
                            **auth).json()
    # The API key is the super-admin role, which lacks only move_teachers_to_another_class_20340.
    allowed = caller in ("school_admin", "owner") or (caller == "api_key" and students)
    who = "students" if students else "teachers"
    if allowed:
        assert "errors" not in response, response
        assert roster(service, destination, who) == {user} and roster(service, source, who) == set()
        return
    error = internal_error(response["errors"])
    caller_id = {"teacher": cw.teacher, "student": cw.students[0], "api_key": "undefined"}[caller]
    assert error["message"] == f"User({caller_id}) does not have Permission({permission}) in Organizations({cw.org})"
    assert roster(service, source, who) == {user} and roster(service, destination, who) == set()


def test_a_malformed_uuid_is_postgres_refusal(service, cw):
    error = internal_error(service.errors(
        ADD_STUDENTS, {"input": [{"classId": "not-a-uuid", "studentIds": [cw.students[0]]}]}, admin=True))
    assert error["message"] == 'invalid input syntax for type uuid: "not-a-uuid"'
    error = internal_error(service.errors(DELETE_CLASSES, {"input": [{"id": "42"}]}, admin=True))
    assert "invalid input syntax for type uuid" in error["message"]


# --- createClasses ---


def test_create_classes_shortcode_is_upper_cased_or_generated(service, cw):
    long_name = "N" * 50 + uuid.uuid4().hex[:10]  # 60 characters: no name length limit
    created = service.data(CREATE_CLASSES, {"input": [
        {"organizationId": cw.org, "name": long_name, "shortcode": "ab12"},
        {"organizationId": cw.org, "name": f"Class {uuid.uuid4().hex[:10]}"},
    ]}, token=cw.tokens["school_admin"])["createClasses"]["classes"]
    assert created[0]["name"] == long_name and created[0]["shortCode"] == "AB12"
    generated = created[1]["shortCode"]
    assert generated.isalnum() and generated == generated.upper() and 1 <= len(generated) <= 10
    assert [c["status"] for c in created] == ["active", "active"]


def test_create_classes_refusals_and_all_or_nothing(service, cw):
    taken = service.data(CREATE_CLASSES, {"input": [{"organizationId": cw.org, "name": f"Taken {uuid.uuid4().hex}"}]},
                         admin=True)["createClasses"]["classes"][0]
    fresh = f"Fresh {uuid.uuid4().hex}"
    problems = bad_input_errors(service.errors(CREATE_CLASSES, {"input": [
        {"organizationId": cw.org, "name": fresh},
        {"organizationId": cw.org, "name": taken["name"]},
        {"organizationId": str(uuid.uuid4()), "name": "Nowhere"},
        {"organizationId": cw.org, "name": f"Bad {uuid.uuid4().hex}", "shortcode": "no-dash"},
        {"organizationId": cw.org, "name": f"Long {uuid.uuid4().hex}", "shortcode": "ABCDEFGHIJK"},
    ]}, admin=True))
    assert codes(problems) == [
        ("ERR_DUPLICATE_CHILD_ENTITY_ATTRIBUTE", 1),
        ("ERR_NONEXISTENT_ENTITY_OR_INACTIVE_STATUS", 2),
        ("ERR_INVALID_ALPHANUMERIC", 3),
        ("ERR_INVALID_MAX_LENGTH", 4),
    ]
    assert all(p["message"].startswith(f"On index {p['index']}, ") for p in problems)
    # The valid element was not created either: its name is still free.
    assert len(service.data(CREATE_CLASSES, {"input": [{"organizationId": cw.org, "name": fresh}]},
                            admin=True)["createClasses"]["classes"]) == 1


def test_create_classes_is_not_idempotent_and_a_deleted_class_keeps_its_name(service, cw):
    name = f"Once {uuid.uuid4().hex}"
    created = service.data(CREATE_CLASSES, {"input": [{"organizationId": cw.org, "name": name}]}, admin=True)
    class_id = created["createClasses"]["classes"][0]["id"]
    problems = bad_input_errors(service.errors(CREATE_CLASSES, {"input": [{"organizationId": cw.org, "name": name}]},
                                               admin=True))
    assert codes(problems) == [("ERR_DUPLICATE_CHILD_ENTITY_ATTRIBUTE", 0)]
    service.data(DELETE_CLASSES, {"input": [{"id": class_id}]}, admin=True)
    problems = bad_input_errors(service.errors(CREATE_CLASSES, {"input": [{"organizationId": cw.org, "name": name}]},
                                               admin=True))
    assert codes(problems) == [("ERR_DUPLICATE_CHILD_ENTITY_ATTRIBUTE", 0)]
    # Another organization may use the name.
    service.data(CREATE_CLASSES, {"input": [{"organizationId": cw.other_org, "name": name}]}, admin=True)


# --- updateClasses ---


def test_update_classes_renames_and_repeats_succeed(service, cw):
    first, second = new_classes(service, cw.org, 2)
    name = f"Renamed {uuid.uuid4().hex}"
    for _ in range(2):  # a repeated update succeeds
        updated = service.data(UPDATE_CLASSES, {"input": [{"classId": first, "className": name, "shortcode": "up1"}]},
                               token=cw.tokens["school_admin"])["updateClasses"]["classes"]
        assert updated == [{"id": first, "name": name, "status": "active", "shortCode": "UP1"}]
    before = class_node(service, second)
    # An empty or missing className is ignored without error.
    kept = service.data(UPDATE_CLASSES, {"input": [{"classId": second, "className": ""}, {"classId": first}]},
                        admin=True)["updateClasses"]["classes"]
    assert [c["name"] for c in kept] == [before["name"], name]


def test_update_classes_refusals_and_all_or_nothing(service, cw):
    a, b, c, d, deleted = new_classes(service, cw.org, 5)
    service.data(UPDATE_CLASSES, {"input": [{"classId": b, "shortcode": "HELD1"}]}, admin=True)
    service.data(DELETE_CLASSES, {"input": [{"id": deleted}]}, admin=True)
    names = {x: class_node(service, x)["name"] for x in (a, b, c, d, deleted)}
    same = f"Same {uuid.uuid4().hex}"
    problems = bad_input_errors(service.errors(UPDATE_CLASSES, {"input": [
        {"classId": a, "className": f"Valid {uuid.uuid4().hex}"},
        {"classId": b, "className": names[deleted]},  # held by a deleted class
        {"classId": c, "className": same},
        {"classId": d, "className": same},
        {"classId": deleted, "className": f"Undead {uuid.uuid4().hex}"},
        {"classId": c, "shortcode": "bad code"},
        {"classId": a, "shortcode": "held1"},
    ]}, admin=True))
    assert codes(problems) == [
        # The checks over all inputs first (a classId repeated, the same new name twice), then each element's.
        ("ERR_DUPLICATE_INPUT_ATTRIBUTE_VALUE", 3),
        ("ERR_DUPLICATE_ATTRIBUTE_VALUES", 5),
        ("ERR_DUPLICATE_ATTRIBUTE_VALUES", 6),
        ("ERR_DUPLICATE_CHILD_ENTITY", 1),
        ("ERR_NON_EXISTENT_ENTITY", 4),
        ("ERR_INVALID_ALPHANUMERIC", 5),
        ("ERR_DUPLICATE_CHILD_ENTITY", 6),
    ]
    assert {x: class_node(service, x)["name"] for x in names} == names  # nothing written


# --- deleteClasses ---


def test_delete_classes_is_soft_and_reads_still_return_the_class(service, cw):
    class_id = new_class(service, cw.org, school=cw.school1)
    add(service, ADD_STUDENTS, class_id, [cw.students[0]])
    add(service, ADD_TEACHERS, class_id, [cw.teacher])
    deleted = service.data(DELETE_CLASSES, {"input": [{"id": class_id}]},
                           token=cw.tokens["owner"])["deleteClasses"]["classes"]
    assert [(c["id"], c["status"]) for c in deleted] == [(class_id, "inactive")]
    node = class_node(service, class_id)
    assert node["status"] == "inactive"
    assert roster(service, class_id) == {cw.students[0]} and roster(service, class_id, "teachers") == {cw.teacher}
    assert node["schoolsConnection"]["totalCount"] == 1
    listed = service.data(CLASSES_BY_ID, {"org": cw.org, "id": class_id}, token=cw.tokens["owner"])
    assert [e["node"] for e in listed["classesConnection"]["edges"]] == [{"id": class_id, "status": "inactive"}]
    mine = service.data(ME_CLASSES_STUDYING, token=cw.tokens["student"])["me"]["classesStudying"]
    assert {"class_id": class_id, "status": "inactive"} in mine
    with psycopg.connect(service.dsn, options=f"-c search_path={service.db_schema}") as conn:
        row = conn.execute("SELECT status, deleted_at FROM class WHERE class_id = %s", [class_id]).fetchone()
    assert row[0] == "inactive" and row[1] is not None
    # A second delete is refused.
    problems = bad_input_errors(service.errors(DELETE_CLASSES, {"input": [{"id": class_id}]}, admin=True))
    assert codes(problems) == [("ERR_NON_EXISTENT_ENTITY", 0)]


def test_delete_classes_all_or_nothing(service, cw):
    keep = new_class(service, cw.org)
    problems = bad_input_errors(service.errors(DELETE_CLASSES, {"input": [
        {"id": keep}, {"id": str(uuid.uuid4())}, {"id": keep},
    ]}, admin=True))
    assert codes(problems) == [("ERR_DUPLICATE_ATTRIBUTE_VALUES", 2), ("ERR_NON_EXISTENT_ENTITY", 1)]
    assert class_node(service, keep)["status"] == "active"


# --- add / remove students and teachers ---


ROSTER_WRITES = [
    (ADD_STUDENTS, REMOVE_STUDENTS, "studentIds", "students"),
    (ADD_TEACHERS, REMOVE_TEACHERS, "teacherIds", "teachers"),
]


@pytest.mark.parametrize("add_doc, remove_doc, key, who", ROSTER_WRITES)
def test_roster_adds_and_removes_are_not_idempotent(service, cw, add_doc, remove_doc, key, who):
    class_id = new_class(service, cw.org)
    user = cw.students[2] if who == "students" else cw.teacher2
    result = service.data(add_doc, {"input": [{"classId": class_id, key: [user]}]}, token=cw.tokens["owner"])
    assert list(result.values())[0]["classes"][0][f"{who}Connection"]["totalCount"] == 1
    problems = bad_input_errors(service.errors(add_doc, {"input": [{"classId": class_id, key: [user]}]}, admin=True))
    assert codes(problems) == [("ERR_DUPLICATE_CHILD_ENTITY", 0)]
    result = service.data(remove_doc, {"input": [{"classId": class_id, key: [user]}]}, token=cw.tokens["owner"])
    assert list(result.values())[0]["classes"][0][f"{who}Connection"]["totalCount"] == 0
    problems = bad_input_errors(service.errors(remove_doc, {"input": [{"classId": class_id, key: [user]}]}, admin=True))
    assert codes(problems) == [("ERR_NON_EXISTENT_CHILD_ENTITY", 0)]
    table = "user_classes_studying_class" if who == "students" else "user_classes_teaching_class"
    with psycopg.connect(service.dsn, options=f"-c search_path={service.db_schema}") as conn:
        count = conn.execute(f'SELECT count(*) FROM {table} WHERE "classClassId" = %s', [class_id]).fetchone()[0]
    assert count == 0  # a hard delete


@pytest.mark.parametrize("add_doc, remove_doc, key, who", ROSTER_WRITES)
def test_roster_add_refusals_and_all_or_nothing(service, cw, add_doc, remove_doc, key, who):
    good, deleted, other = new_classes(service, cw.org, 3)
    member = cw.students[3] if who == "students" else cw.teacher2
    on_roster = cw.students[0] if who == "students" else cw.teacher
    add(service, add_doc, other, [on_roster])
    service.data(DELETE_CLASSES, {"input": [{"id": deleted}]}, admin=True)
    problems = bad_input_errors(service.errors(add_doc, {"input": [
        {"classId": good, key: [member]},
        {"classId": str(uuid.uuid4()), key: [member]},
        {"classId": deleted, key: [member]},
        {"classId": other, key: [on_roster, str(uuid.uuid4())]},
        {"classId": good, key: [cw.stranger]},
    ]}, admin=True))
    assert codes(problems) == [
        ("ERR_DUPLICATE_ATTRIBUTE_VALUES", 4),
        ("ERR_NON_EXISTENT_ENTITY", 1),
        ("ERR_NON_EXISTENT_ENTITY", 2),
        ("ERR_NON_EXISTENT_ENTITY", 3),
        ("ERR_DUPLICATE_CHILD_ENTITY", 3),
        ("ERR_NON_EXISTENT_CHILD_ENTITY", 4),
    ]
    assert roster(service, good, who) == set() and roster(service, other, who) == {on_roster}
    # Only the stranger (no membership in the class's organization): ERR_NON_EXISTENT_CHILD_ENTITY.
    problems = bad_input_errors(service.errors(add_doc, {"input": [{"classId": good, key: [cw.stranger]}]}, admin=True))
    assert codes(problems) == [("ERR_NON_EXISTENT_CHILD_ENTITY", 0)]


def test_an_inactive_organization_membership_may_still_join_a_class(service, cw):
    user = _users(service, ["inactive"], uuid.uuid4().hex[:8])["inactive"]
    roles = system_roles(service)
    service.data(ADD_USERS_TO_ORGANIZATIONS, {"input": [
        {"organizationId": cw.org, "organizationRoleIds": [roles["Student"]], "userIds": [user]}]}, admin=True)
    with psycopg.connect(service.dsn, options=f"-c search_path={service.db_schema}") as conn:
        conn.execute("UPDATE organization_membership SET status = 'inactive' WHERE user_id = %s", [user])
    class_id = new_class(service, cw.org)
    assert "errors" not in add(service, ADD_STUDENTS, class_id, [user])
    assert roster(service, class_id) == {user}


@pytest.mark.parametrize("add_doc, remove_doc, key, who", ROSTER_WRITES)
def test_roster_remove_refusals_and_all_or_nothing(service, cw, add_doc, remove_doc, key, who):
    first, second = new_classes(service, cw.org, 2)
    users = cw.students[:2] if who == "students" else [cw.teacher, cw.teacher2]
    add(service, add_doc, first, users)
    add(service, add_doc, second, users[:1])
    problems = bad_input_errors(service.errors(remove_doc, {"input": [
        {"classId": first, key: users},
        {"classId": second, key: users},  # users[1] is not on second's roster
        {"classId": str(uuid.uuid4()), key: users[:1]},
    ]}, admin=True))
    assert codes(problems) == [("ERR_NON_EXISTENT_CHILD_ENTITY", 1), ("ERR_NON_EXISTENT_ENTITY", 2)]
    assert roster(service, first, who) == set(users) and roster(service, second, who) == set(users[:1])


# --- moveStudentsToClass / moveTeachersToClass ---


@pytest.mark.parametrize("document, who", [(MOVE_STUDENTS, "students"), (MOVE_TEACHERS, "teachers")])
def test_move_refusals_and_all_or_nothing(service, cw, document, who):
    adding = ADD_STUDENTS if who == "students" else ADD_TEACHERS
    users = cw.students[:2] if who == "students" else [cw.teacher, cw.teacher2]
    source = new_class(service, cw.org, school=cw.school1)
    add(service, adding, source, users[:1])
    same_school = new_class(service, cw.org, school=cw.school1)
    other_school = new_class(service, cw.org, school=cw.school2)
    two_schools = new_class(service, cw.org, school=cw.school1)
    service.data(ADD_CLASSES_TO_SCHOOLS, {"input": [{"schoolId": cw.school2, "classIds": [two_schools]}]}, admin=True)
    other_org = new_class(service, cw.other_org, school=cw.other_school)
    token = cw.tokens["owner"]

    def refused(destination: str, moved: list[str]) -> list[tuple[str, int | None]]:
        errors = service.errors(document, {"input": {"fromClassId": source, "toClassId": destination,
                                                     "userIds": moved}}, token=token)
        if errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR":
            return [("INTERNAL_SERVER_ERROR", None)]
        return codes(bad_input_errors(errors))

    assert refused(other_school, users[:1]) == [("SOURCE_AND_DESTINATION_DONT_MATCH", None)]
    assert refused(two_schools, users[:1]) == [("TOO_MANY_RELATIONS", None)]
    assert refused(same_school, users) == [("ERR_NON_EXISTENT_CHILD_ENTITY", None)]
    # Another organization: the owner of organization A has no permission there; the API key
    # (students only) gets the organization mismatch.
    if who == "students":
        problems = bad_input_errors(service.errors(document, {"input": {
            "fromClassId": source, "toClassId": other_org, "userIds": users[:1]}}, admin=True))
        assert ("SOURCE_AND_DESTINATION_DONT_MATCH", None) in codes(problems)
    assert refused(other_org, users[:1]) == [("INTERNAL_SERVER_ERROR", None)]
    assert roster(service, source, who) == set(users[:1])
    for destination in (same_school, other_school, two_schools, other_org):
        assert roster(service, destination, who) == set()


@pytest.mark.parametrize("document, who", [(MOVE_STUDENTS, "students"), (MOVE_TEACHERS, "teachers")])
def test_move_into_a_deleted_class_and_no_length_limit(service, cw, document, who):
    adding = ADD_STUDENTS if who == "students" else ADD_TEACHERS
    users = cw.students[:2] if who == "students" else [cw.teacher, cw.teacher2]
    source, destination = new_classes(service, cw.org, 2)  # no school: both the same (none)
    add(service, adding, source, users)
    service.data(DELETE_CLASSES, {"input": [{"id": destination}]}, admin=True)
    moved = service.data(document, {"input": {"fromClassId": source, "toClassId": destination, "userIds": users}},
                         token=cw.tokens["owner"])
    result = list(moved.values())[0]
    assert result["fromClass"]["id"] == source and result["toClass"]["id"] == destination
    assert result["toClass"]["status"] == "inactive"
    assert result["toClass"][f"{who}Connection"]["totalCount"] == 2
    assert roster(service, source, who) == set() and roster(service, destination, who) == set(users)
    # The same move again: nobody is on the source roster any more.
    problems = bad_input_errors(service.errors(document, {"input": {
        "fromClassId": source, "toClassId": destination, "userIds": users}}, token=cw.tokens["owner"]))
    assert [p["code"] for p in problems] == ["ERR_NON_EXISTENT_CHILD_ENTITY"] * 2
    # No length limit on userIds: 51 ids are judged on the roster, not refused for their number.
    many = [str(uuid.uuid4()) for _ in range(51)]
    problems = bad_input_errors(service.errors(document, {"input": {
        "fromClassId": destination, "toClassId": source, "userIds": many}}, token=cw.tokens["owner"]))
    assert {p["code"] for p in problems} == {"ERR_NON_EXISTENT_CHILD_ENTITY"} and len(problems) == 51
    empty = service.data(document, {"input": {"fromClassId": destination, "toClassId": source, "userIds": []}},
                         token=cw.tokens["owner"])
    assert list(empty.values())[0]["fromClass"][f"{who}Connection"]["totalCount"] == 2


# --- the knob: lost roster writes ---


def parallel_one_student_adds(base_url: str, class_id: str, students: list[str]) -> tuple[set[str], int]:
    """Each student added by its own request, all released at once; returns the students whose
    add was acknowledged (no errors) and how many requests failed with ERROR_SAVING."""
    barrier = threading.Barrier(len(students))

    def one(student: str) -> dict:
        with requests.Session() as session:
            barrier.wait(timeout=30)
            return session.post(
                f"{base_url}/user/", timeout=60, headers={"Authorization": f"Bearer {API_KEY}"},
                json={"query": ADD_STUDENTS, "variables": {"input": [{"classId": class_id, "studentIds": [student]}]}},
            ).json()

    with ThreadPoolExecutor(max_workers=len(students)) as pool:
        answers = list(pool.map(one, students))
    acknowledged = {s for s, a in zip(students, answers, strict=True) if "errors" not in a}
    saving_errors = 0
    for answer in answers:
        for error in answer.get("errors") or []:
            assert error["message"] == "ERROR_SAVING", answer  # the only failure the race may cause
            assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
            saving_errors += 1
    return acknowledged, saving_errors


@pytest.fixture(scope="module")
def unlocked_service(service):
    """A second service on the same database with `roster_writes="unlocked"` (4.5.0's behaviour)."""
    config = ServiceConfig(dsn=service.dsn, api_key=API_KEY, db_schema=service.db_schema, pool_size=24,
                           roster_writes="unlocked")
    running = ThreadedServer(create_app(config)).start()
    yield Service(running.base_url, API_KEY, service.dsn, service.db_schema)
    running.stop()


def test_unlocked_roster_writes_lose_acknowledged_writes(service, cw, unlocked_service):
    # MUTATIONS.md [L]: 20 parallel one-student adds to one class: 17 succeeded, 3 ERROR_SAVING,
    # 12 rows kept. The race is real, so the experiment is repeated (each time on a fresh class)
    # until it shows; with the hold between read and save it shows at once on any machine seen.
    for _attempt in range(5):
        class_id = new_class(service, cw.org)
        acknowledged, _ = parallel_one_student_adds(unlocked_service.base_url, class_id, cw.crowd)
        kept = roster(service, class_id)
        assert kept <= set(cw.crowd)
        if acknowledged - kept:
            return
    pytest.fail("20 parallel unlocked adds to one class never lost an acknowledged write in 5 attempts")


def test_locked_roster_writes_lose_nothing(service, cw):
    for _attempt in range(2):
        class_id = new_class(service, cw.org)
        acknowledged, saving_errors = parallel_one_student_adds(service.base_url, class_id, cw.crowd)
        assert saving_errors == 0
        assert acknowledged == set(cw.crowd)
        assert roster(service, class_id) == set(cw.crowd)


def test_locked_parallel_adds_and_removes_of_one_class_keep_every_acknowledged_write(service, cw):
    class_id = new_class(service, cw.org)
    add(service, ADD_STUDENTS, class_id, cw.crowd[:10])
    barrier = threading.Barrier(20)

    def one(index: int) -> tuple[str, str, dict]:
        student = cw.crowd[index]
        document = REMOVE_STUDENTS if index < 10 else ADD_STUDENTS
        with requests.Session() as session:
            barrier.wait(timeout=30)
            answer = session.post(f"{service.base_url}/user/", timeout=60,
                                  headers={"Authorization": f"Bearer {API_KEY}"},
                                  json={"query": document, "variables": {
                                      "input": [{"classId": class_id, "studentIds": [student]}]}}).json()
        return student, document, answer

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert all("errors" not in answer for _, _, answer in results), results
    assert roster(service, class_id) == set(cw.crowd[10:])


def test_the_roster_writes_knob_is_off_by_default_and_wired_to_the_cli_and_the_sandbox():
    environ = {"ULT_SANDBOX_API_KEY": "k"}
    assert config_from_args(build_parser().parse_args(["--dsn", "x"]), environ).roster_writes == "locked"
    unlocked = config_from_args(build_parser().parse_args(["--dsn", "x", "--roster-writes", "unlocked"]), environ)
    assert unlocked.roster_writes == "unlocked"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--dsn", "x", "--roster-writes", "sometimes"])
    with pytest.raises(ValueError):
        ServiceConfig(dsn="x", api_key="k", roster_writes="sometimes")
    assert "--roster-writes" not in ServiceKnobs().to_args()
    assert ServiceKnobs().to_json() == {"latency_ms": {}, "latency_pct": {}, "no_telemetry": []}
    knobs = ServiceKnobs(roster_writes="unlocked")
    assert knobs.to_args() == ["--roster-writes", "unlocked"]
    assert ServiceKnobs.from_json(knobs.to_json()) == knobs
