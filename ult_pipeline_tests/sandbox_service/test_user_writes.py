"""User, membership-status and role writes as the real service 4.5.0 does them (MUTATIONS.md):
updateUsers; remove / reactivate / delete users from organizations and schools; add / remove
organization and school roles. For each: its length limits, who may call it, each error code,
all-or-nothing, and that a repeat is refused (updates excepted).

Each test builds its own small organization, so the session's shared world is never changed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest

from ult_pipeline.sandbox_service import app as app_module
from ult_pipeline.sandbox_service.resolvers import bindables, user_writes
from ult_pipeline.sandbox_service.system_data import SYSTEM_ROLES

from .conftest import Service, ThreadedServer, make_token, service_config
from .world import (
    ADD_USERS_TO_ORGANIZATIONS,
    ADD_USERS_TO_SCHOOLS,
    CREATE_ORGANIZATIONS,
    CREATE_SCHOOLS,
    CREATE_USERS,
    system_roles,
    user_input,
)

UPDATE_USERS = """
mutation UpdateUsers($input: [UpdateUserInput!]!) {
  updateUsers(input: $input) {
    users { id givenName familyName contactInfo { email phone } username dateOfBirth gender avatar status }
  }
}"""

REMOVE_USERS_FROM_ORGANIZATIONS = """
mutation RemoveUsersFromOrganizations($input: [RemoveUsersFromOrganizationInput!]!) {
  removeUsersFromOrganizations(input: $input) { organizations { id } }
}"""

REACTIVATE_USERS_FROM_ORGANIZATIONS = """
mutation ReactivateUsersFromOrganizations($input: [ReactivateUsersFromOrganizationInput!]!) {
  reactivateUsersFromOrganizations(input: $input) { organizations { id } }
}"""

DELETE_USERS_FROM_ORGANIZATIONS = """
mutation DeleteUsersFromOrganizations($input: [DeleteUsersFromOrganizationInput!]!) {
  deleteUsersFromOrganizations(input: $input) { organizations { id } }
}"""

REMOVE_USERS_FROM_SCHOOLS = """
mutation RemoveUsersFromSchools($input: [RemoveUsersFromSchoolInput!]!) {
  removeUsersFromSchools(input: $input) { schools { id } }
}"""

REACTIVATE_USERS_FROM_SCHOOLS = """
mutation ReactivateUsersFromSchools($input: [ReactivateUsersFromSchoolInput!]!) {
  reactivateUsersFromSchools(input: $input) { schools { id } }
}"""

DELETE_USERS_FROM_SCHOOLS = """
mutation DeleteUsersFromSchools($input: [DeleteUsersFromSchoolInput!]!) {
  deleteUsersFromSchools(input: $input) { schools { id } }
}"""

ADD_ORGANIZATION_ROLES = """
mutation AddOrganizationRolesToUsers($input: [AddOrganizationRolesToUserInput!]!) {
  addOrganizationRolesToUsers(input: $input) { users { id } }
}"""

REMOVE_ORGANIZATION_ROLES = """
mutation RemoveOrganizationRolesFromUsers($input: [RemoveOrganizationRolesFromUserInput!]!) {
  removeOrganizationRolesFromUsers(input: $input) { users { id } }
}"""

ADD_SCHOOL_ROLES = """
mutation AddSchoolRolesToUsers($input: [AddSchoolRolesToUserInput!]!) {
  addSchoolRolesToUsers(input: $input) { users { id } }
}"""

REMOVE_SCHOOL_ROLES = """
mutation RemoveSchoolRolesFromUsers($input: [RemoveSchoolRolesFromUserInput!]!) {
  removeSchoolRolesFromUsers(input: $input) { users { id } }
}"""

MEMBERSHIPS = """
query Memberships($id: ID!) {
  userNode(id: $id) {
    givenName
    organizationMembershipsConnection(count: 50) {
      edges { node { organizationId status rolesConnection { edges { node { id name } } } } }
    }
    schoolMembershipsConnection(count: 50) {
      edges { node { schoolId status rolesConnection { edges { node { id name } } } } }
    }
  }
}"""

USER_NODE = """
query UserNode($id: ID!) {
  userNode(id: $id) {
    id givenName familyName contactInfo { email phone } username dateOfBirth gender avatar
  }
}"""

PERMISSION_REFUSAL = re.compile(r"^User\((?P<user>[^)]*)\) does not have Permission\((?P<permission>[^)]+)\) "
                                r"in Organizations\((?P<orgs>[^)]*)\)$")


# --- the service under test: the session's, or one with user_writes added until it is wired up ---


@pytest.fixture(scope="module")
def svc(service, postgres_uri):
    if any(b in bindables() for b in user_writes.BINDABLES):
        yield service
        return
    original = app_module.bindables
    app_module.bindables = lambda: [*original(), *user_writes.BINDABLES]
    try:
        application = app_module.create_app(service_config(postgres_uri, service.db_schema))
    finally:
        app_module.bindables = original
    running = ThreadedServer(application).start()
    yield Service(running.base_url, service.api_key, postgres_uri, service.db_schema)
    running.stop()


@pytest.fixture(scope="module")
def roles(svc):
    return system_roles(svc)


@dataclass
class Org:
    """A fresh organization: owner (Organization Admin), a School Admin, a teacher and three
    students, all members of the organization and of its school."""

    id: str
    school: str
    owner: str
    school_admin: str
    teacher: str
    students: list[str]
    emails: dict[str, str]

    def token(self, user: str) -> str:
        return make_token(user, self.emails[user])


def create_users(svc: Service, labels: list[str]) -> dict[str, tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    emails = [f"{label.lower()}.{tag}@example.test" for label in labels]
    users = svc.data(CREATE_USERS, {"input": [user_input(label, email) for label, email in zip(labels, emails, strict=True)]},
                     admin=True)["createUsers"]["users"]
    return {label: (user["id"], email) for label, user, email in zip(labels, users, emails, strict=True)}


def new_org(svc: Service, roles: dict[str, str]) -> Org:
    made = create_users(svc, ["Owner", "SchoolAdmin", "Teacher", "StudentA", "StudentB", "StudentC"])
    ids = {label: user for label, (user, _) in made.items()}
    emails = {user: email for user, email in made.values()}
    tag = uuid.uuid4().hex[:8]
    org = svc.data(CREATE_ORGANIZATIONS, {"input": [{"userId": ids["Owner"], "organizationName": f"W {tag}"}]},
                   admin=True)["createOrganizations"]["organizations"][0]["id"]
    school = svc.data(CREATE_SCHOOLS, {"input": [{"organizationId": org, "name": f"S {tag}"}]},
                      admin=True)["createSchools"]["schools"][0]["id"]
    students = [ids["StudentA"], ids["StudentB"], ids["StudentC"]]
    for role, users in (("School Admin", [ids["SchoolAdmin"]]), ("Teacher", [ids["Teacher"]]), ("Student", students)):
        svc.data(ADD_USERS_TO_ORGANIZATIONS, {"input": [{"organizationId": org, "organizationRoleIds": [roles[role]],
                                                         "userIds": users}]}, admin=True)
        svc.data(ADD_USERS_TO_SCHOOLS, {"input": [{"schoolId": school, "schoolRoleIds": [roles[role]],
                                                   "userIds": users}]}, admin=True)
    return Org(org, school, ids["Owner"], ids["SchoolAdmin"], ids["Teacher"], students, emails)


@pytest.fixture
def org(svc, roles) -> Org:
    return new_org(svc, roles)


# --- assertions on the error shapes (errors.py) ---


def problems_of(errors: list[dict]) -> list[dict]:
    """The problems of the single ERR_API_BAD_INPUT error, in `extensions.exception.errors`."""
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["message"] == "ERR_API_BAD_INPUT", error
    assert error["extensions"]["code"] == "ERR_API_BAD_INPUT", error
    problems = error["extensions"]["exception"]["errors"]
    assert problems, error
    for problem in problems:
        assert set(problem) >= {"code", "message", "index"}, problem
        assert problem["message"].startswith(f"On index {problem['index']}, "), problem
    return problems


def outer_length_code(errors: list[dict]) -> str:
    """The outer array's length refusal: INTERNAL_SERVER_ERROR, its code in extensions.exception.code."""
    assert len(errors) == 1, errors
    assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", errors[0]
    return errors[0]["extensions"]["exception"]["code"]


def codes(problems: list[dict]) -> list[tuple[str, int]]:
    return [(p["code"], p["index"]) for p in problems]


def refused(svc: Service, document: str, variables: dict, token: str, permission: str) -> dict:
    errors = svc.errors(document, variables, token=token)
    assert len(errors) == 1, errors
    match = PERMISSION_REFUSAL.match(errors[0]["message"])
    assert match, errors[0]
    assert match["permission"] == permission
    assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    return match.groupdict()


def memberships(svc: Service, user: str) -> dict:
    node = svc.data(MEMBERSHIPS, {"id": user}, admin=True)["userNode"]
    orgs = {
        e["node"]["organizationId"]: (e["node"]["status"], sorted(r["node"]["name"] for r in e["node"]["rolesConnection"]["edges"]))
        for e in node["organizationMembershipsConnection"]["edges"]
    }
    schools = {
        e["node"]["schoolId"]: (e["node"]["status"], sorted(r["node"]["name"] for r in e["node"]["rolesConnection"]["edges"]))
        for e in node["schoolMembershipsConnection"]["edges"]
    }
    return {"orgs": orgs, "schools": schools}


# =============================== updateUsers ===============================


def test_update_users_writes_given_fields_and_keeps_empty_ones(svc, org):
    user = org.students[0]
    before = svc.data(USER_NODE, {"id": user}, admin=True)["userNode"]
    updated = svc.data(UPDATE_USERS, {"input": [{
        "id": user, "givenName": "Renamed", "familyName": "", "email": "", "dateOfBirth": "03-2015",
        "gender": "male", "username": f"u{uuid.uuid4().hex[:8]}",
    }]}, admin=True)["updateUsers"]["users"]
    assert [u["id"] for u in updated] == [user]
    after = svc.data(USER_NODE, {"id": user}, admin=True)["userNode"]
    assert after["givenName"] == "Renamed"
    assert after["familyName"] == before["familyName"]  # empty keeps the stored value
    assert after["contactInfo"]["email"] == before["contactInfo"]["email"]
    assert (after["dateOfBirth"], after["gender"]) == ("03-2015", "male")
    assert updated[0]["givenName"] == "Renamed"


def test_update_users_twice_succeeds_both_times(svc, org):
    for _ in range(2):
        svc.data(UPDATE_USERS, {"input": [{"id": org.teacher, "givenName": "Same"}]}, admin=True)
    assert svc.data(USER_NODE, {"id": org.teacher}, admin=True)["userNode"]["givenName"] == "Same"


@pytest.mark.parametrize("length,code", [(0, "ERR_INVALID_ARRAY_MIN_LENGTH"), (51, "ERR_INVALID_ARRAY_MAX_LENGTH")])
def test_update_users_length_limits(svc, org, length, code):
    errors = svc.errors(UPDATE_USERS, {"input": [{"id": org.teacher, "givenName": "X"}] * length}, admin=True)
    assert outer_length_code(errors) == code
    assert svc.data(USER_NODE, {"id": org.teacher}, admin=True)["userNode"]["givenName"] == "Teacher"


def test_update_users_each_error_code_and_nothing_written(svc, org):
    a, b, c = org.students
    taken = svc.data(USER_NODE, {"id": b}, admin=True)["userNode"]
    elements = [
        {"id": a, "givenName": "Fine"},  # valid, must not be written
        {"id": org.teacher},  # nothing to update
        {"id": str(uuid.uuid4()), "givenName": "Ghost"},
        {"id": c, "email": "not-an-email"},
        {"id": c, "dateOfBirth": "2015-03"},
        {"id": org.school_admin, "gender": "ab"},
        # becomes student B: same names, same email
        {"id": org.owner, "givenName": taken["givenName"], "familyName": taken["familyName"],
         "email": taken["contactInfo"]["email"]},
    ]
    problems = problems_of(svc.errors(UPDATE_USERS, {"input": elements}, admin=True))
    assert sorted(codes(problems), key=lambda x: (x[1], x[0])) == [
        ("ERR_REQUIRES_AT_LEAST_ONE", 1),
        ("ERR_NON_EXISTENT_ENTITY", 2),
        ("ERR_INVALID_EMAIL", 3),
        ("ERR_DUPLICATE_ATTRIBUTE_VALUES", 4),  # c listed twice
        ("ERR_INVALID_DATE", 4),
        ("ERR_INVALID_MIN_LENGTH", 5),
        ("ERR_DUPLICATE_ENTITY", 6),
    ]
    assert svc.data(USER_NODE, {"id": a}, admin=True)["userNode"]["givenName"] == "StudentA"
    assert svc.data(USER_NODE, {"id": org.owner}, admin=True)["userNode"]["givenName"] == "Owner"


def test_update_users_gender_length_bounds(svc, org):
    problems = problems_of(svc.errors(UPDATE_USERS, {"input": [{"id": org.teacher, "gender": "x" * 17}]}, admin=True))
    assert [p["code"] for p in problems] == ["ERR_INVALID_MAX_LENGTH"]
    for gender in ("abc", "x" * 16):
        svc.data(UPDATE_USERS, {"input": [{"id": org.teacher, "gender": gender}]}, admin=True)


def test_update_users_inactive_user_counts_as_absent(svc, org, postgres_uri):
    import psycopg

    with psycopg.connect(postgres_uri, autocommit=True, options=f"-c search_path={svc.db_schema}") as conn:
        conn.execute("UPDATE \"user\" SET status = 'inactive' WHERE user_id = %s", [org.students[2]])
    problems = problems_of(svc.errors(UPDATE_USERS, {"input": [{"id": org.students[2], "givenName": "X"}]},
                                      admin=True))
    assert codes(problems) == [("ERR_NON_EXISTENT_ENTITY", 0)]


@pytest.mark.parametrize("who", ["teacher", "student"])
def test_update_users_refused_to_teacher_and_student_even_on_self(svc, org, who):
    caller = org.teacher if who == "teacher" else org.students[0]
    details = refused(svc, UPDATE_USERS, {"input": [{"id": caller, "givenName": "Me"}]}, org.token(caller),
                      "edit_users_40330")
    assert details["user"] == caller
    assert svc.data(USER_NODE, {"id": caller}, admin=True)["userNode"]["givenName"] != "Me"


def test_update_users_refused_to_a_school_admin(svc, org):
    refused(svc, UPDATE_USERS, {"input": [{"id": org.students[0], "givenName": "No"}]},
            org.token(org.school_admin), "edit_users_40330")


def test_an_organization_admin_updates_any_user_even_outside_their_organization(svc, org, roles):
    other = new_org(svc, roles)
    svc.data(UPDATE_USERS, {"input": [{"id": other.students[0], "givenName": "Foreign"}]}, token=org.token(org.owner))
    assert svc.data(USER_NODE, {"id": other.students[0]}, admin=True)["userNode"]["givenName"] == "Foreign"


# =============================== membership status ===============================

ORG_STATUS = {
    "remove": (REMOVE_USERS_FROM_ORGANIZATIONS, "deactivate_user_40883"),
    "reactivate": (REACTIVATE_USERS_FROM_ORGANIZATIONS, "reactivate_user_40884"),
    "delete": (DELETE_USERS_FROM_ORGANIZATIONS, "delete_users_40440"),
}
SCHOOL_STATUS = {
    "remove": (REMOVE_USERS_FROM_SCHOOLS, "deactivate_my_school_user_40885"),
    "reactivate": (REACTIVATE_USERS_FROM_SCHOOLS, "reactivate_my_school_user_40886"),
    "delete": (DELETE_USERS_FROM_SCHOOLS, "delete_my_school_users_40441"),
}
STATUS_CASES = [(kind, action) for kind in ("org", "school") for action in ("remove", "reactivate", "delete")]


def status_call(org: Org, kind: str, action: str, users: list[str], parent: str | None = None) -> tuple[str, dict]:
    document = (ORG_STATUS if kind == "org" else SCHOOL_STATUS)[action][0]
    key = "organizationId" if kind == "org" else "schoolId"
    default = org.id if kind == "org" else org.school
    return document, {"input": [{key: parent or default, "userIds": users}]}


def status(svc: Service, org: Org, kind: str, user: str) -> str | None:
    found = memberships(svc, user)["orgs" if kind == "org" else "schools"].get(org.id if kind == "org" else org.school)
    return found[0] if found else None


def run_status(svc, org, kind, action, users, **auth):
    document, variables = status_call(org, kind, action, users)
    return svc.data(document, variables, **auth)


@pytest.mark.parametrize("kind", ["org", "school"])
def test_status_transitions_and_repeats(svc, org, kind):
    a, b, _ = org.students
    other = "schools" if kind == "org" else "orgs"
    untouched = memberships(svc, a)[other]
    result = run_status(svc, org, kind, "remove", [a, b], admin=True)
    parents = result["removeUsersFromOrganizations"]["organizations"] if kind == "org" else \
        result["removeUsersFromSchools"]["schools"]
    assert parents == [{"id": org.id if kind == "org" else org.school}]
    assert (status(svc, org, kind, a), status(svc, org, kind, b)) == ("inactive", "inactive")
    assert memberships(svc, a)[other] == untouched  # the other kind of membership is unchanged
    # roles are kept while inactive
    parent = org.id if kind == "org" else org.school
    assert memberships(svc, a)["orgs" if kind == "org" else "schools"][parent][1] == ["Student"]
    # a second remove, and reactivating an active membership, are refused
    document, variables = status_call(org, kind, "remove", [a])
    assert codes(problems_of(svc.errors(document, variables, admin=True))) == [("ERR_NON_EXISTENT_CHILD_ENTITY", 0)]
    document, variables = status_call(org, kind, "reactivate", [org.teacher])
    assert codes(problems_of(svc.errors(document, variables, admin=True))) == [("ERR_NON_EXISTENT_CHILD_ENTITY", 0)]
    run_status(svc, org, kind, "reactivate", [a], admin=True)
    assert status(svc, org, kind, a) == "active"
    document, variables = status_call(org, kind, "reactivate", [a])
    assert codes(problems_of(svc.errors(document, variables, admin=True))) == [("ERR_NON_EXISTENT_CHILD_ENTITY", 0)]
    # delete takes active (a) and inactive (b) memberships; deleted is not reactivatable nor deletable again
    run_status(svc, org, kind, "delete", [a, b], admin=True)
    assert (status(svc, org, kind, a), status(svc, org, kind, b)) == ("deleted", "deleted")
    for action in ("reactivate", "delete", "remove"):
        document, variables = status_call(org, kind, action, [a])
        assert codes(problems_of(svc.errors(document, variables, admin=True))) == [("ERR_NON_EXISTENT_CHILD_ENTITY", 0)]
    assert memberships(svc, a)["orgs" if kind == "org" else "schools"][parent][1] == ["Student"]


@pytest.mark.parametrize("kind,action", STATUS_CASES)
def test_status_length_limits(svc, org, kind, action):
    document, _ = status_call(org, kind, action, [])
    key = "organizationId" if kind == "org" else "schoolId"
    parent = org.id if kind == "org" else org.school
    for length, code in ((0, "ERR_INVALID_ARRAY_MIN_LENGTH"), (51, "ERR_INVALID_ARRAY_MAX_LENGTH")):
        element = {key: parent, "userIds": [org.students[0]]}
        assert outer_length_code(svc.errors(document, {"input": [element] * length}, admin=True)) == code
    many = [str(uuid.uuid4()) for _ in range(51)]
    for users, code in (([], "ERR_INVALID_ARRAY_MIN_LENGTH"), (many, "ERR_INVALID_ARRAY_MAX_LENGTH"),
                        ([org.students[0], org.students[0]], "ERR_DUPLICATE_ATTRIBUTE_VALUES")):
        problems = problems_of(svc.errors(document, {"input": [{key: parent, "userIds": users}]}, admin=True))
        assert code in [p["code"] for p in problems], problems
        assert all(p["index"] == 0 for p in problems)
    assert status(svc, org, kind, org.students[0]) == "active"


@pytest.mark.parametrize("kind,action", STATUS_CASES)
def test_status_each_parent_once_unknown_ids_and_all_or_nothing(svc, org, kind, action):
    document, _ = status_call(org, kind, action, [])
    key = "organizationId" if kind == "org" else "schoolId"
    parent = org.id if kind == "org" else org.school
    a, b, c = org.students
    if action == "reactivate":  # make a and b reactivatable
        run_status(svc, org, kind, "remove", [a, b], admin=True)
    before = [status(svc, org, kind, u) for u in (a, b, c)]
    stranger = create_users(svc, ["Stranger"])["Stranger"][0]
    elements = [
        {key: parent, "userIds": [a, str(uuid.uuid4()), stranger]},
        {key: str(uuid.uuid4()), "userIds": [b]},
        {key: parent, "userIds": [c]},
    ]
    problems = problems_of(svc.errors(document, {"input": elements}, admin=True))
    assert sorted(codes(problems)) == sorted([
        ("ERR_NON_EXISTENT_ENTITY", 0), ("ERR_NON_EXISTENT_CHILD_ENTITY", 0),
        ("ERR_NON_EXISTENT_ENTITY", 1), ("ERR_DUPLICATE_ATTRIBUTE_VALUES", 2),
    ]), [(p["code"], p["index"], p["message"]) for p in problems]
    assert [status(svc, org, kind, u) for u in (a, b, c)] == before


@pytest.mark.parametrize("kind,action", STATUS_CASES)
@pytest.mark.parametrize("who", ["teacher", "student"])
def test_status_refused_to_teacher_and_student(svc, org, kind, action, who):
    caller = org.teacher if who == "teacher" else org.students[0]
    document, variables = status_call(org, kind, action, [org.students[1]])
    permission = (ORG_STATUS if kind == "org" else SCHOOL_STATUS)[action][1]
    details = refused(svc, document, variables, org.token(caller), permission)
    assert details["orgs"] == org.id
    assert status(svc, org, kind, org.students[1]) == "active"


@pytest.mark.parametrize("action", ["remove", "reactivate", "delete"])
def test_org_status_refused_to_a_school_admin(svc, org, action):
    if action == "reactivate":
        run_status(svc, org, "org", "remove", [org.students[1]], admin=True)
    document, variables = status_call(org, "org", action, [org.students[1]])
    refused(svc, document, variables, org.token(org.school_admin), ORG_STATUS[action][1])


def _allowed_cases():
    cases = []
    for kind, action in STATUS_CASES:
        permission = (ORG_STATUS if kind == "org" else SCHOOL_STATUS)[action][1]
        callers = ["owner"] + (["school_admin"] if kind == "school" else [])
        for who in callers:
            role = "Organization Admin" if who == "owner" else "School Admin"
            assert permission in SYSTEM_ROLES[role], f"system_data.py: {role} lacks {permission} (MUTATIONS.md: yes)"
            cases.append(pytest.param(kind, action, who))
    return cases


@pytest.mark.parametrize("kind,action,who", _allowed_cases())
def test_status_allowed_to_admins_but_not_on_themselves(svc, org, kind, action, who):
    caller = getattr(org, who)
    a = org.students[1]
    if action == "reactivate":
        # Only `a`: the sandbox's scope (scope.py) drops an inactive member's permissions, where
        # the real service keeps them (MUTATIONS.md, "Traps").
        run_status(svc, org, kind, "remove", [a], admin=True)
    before = status(svc, org, kind, caller)
    document, variables = status_call(org, kind, action, [a, caller])
    problems = problems_of(svc.errors(document, variables, token=org.token(caller)))
    assert codes(problems) == [("ERR_USER_CANNOT_APPLY_CHANGE_TO_SELF", 0)]
    assert status(svc, org, kind, caller) == before
    run_status(svc, org, kind, action, [a], token=org.token(caller))
    expected = {"remove": "inactive", "reactivate": "active", "delete": "deleted"}[action]
    assert status(svc, org, kind, a) == expected


# =============================== roles on a membership ===============================

ROLE_DOCS = {
    ("org", True): ADD_ORGANIZATION_ROLES,
    ("org", False): REMOVE_ORGANIZATION_ROLES,
    ("school", True): ADD_SCHOOL_ROLES,
    ("school", False): REMOVE_SCHOOL_ROLES,
}
ROLE_CASES = [(kind, add) for kind in ("org", "school") for add in (True, False)]


def role_element(org: Org, kind: str, user: str, role_ids: list[str], parent: str | None = None) -> dict:
    if kind == "org":
        return {"userId": user, "organizationId": parent or org.id, "roleIds": role_ids}
    return {"userId": user, "schoolId": parent or org.school, "roleIds": role_ids}


def roles_of(svc: Service, org: Org, kind: str, user: str) -> list[str] | None:
    found = memberships(svc, user)["orgs" if kind == "org" else "schools"].get(org.id if kind == "org" else org.school)
    return found[1] if found else None


@pytest.mark.parametrize("kind", ["org", "school"])
def test_roles_add_then_remove_and_repeats_refused(svc, org, roles, kind):
    a = org.students[0]
    add, remove = ROLE_DOCS[(kind, True)], ROLE_DOCS[(kind, False)]
    element = role_element(org, kind, a, [roles["Teacher"], roles["Parent"]])
    users = svc.data(add, {"input": [element]}, admin=True)
    assert list(users.values())[0]["users"] == [{"id": a}]
    assert roles_of(svc, org, kind, a) == ["Parent", "Student", "Teacher"]
    problems = problems_of(svc.errors(add, {"input": [role_element(org, kind, a, [roles["Teacher"]])]}, admin=True))
    assert codes(problems) == [("ERR_DUPLICATE_CHILD_ENTITY", 0)]
    svc.data(remove, {"input": [role_element(org, kind, a, [roles["Teacher"]])]}, admin=True)
    problems = problems_of(svc.errors(remove, {"input": [role_element(org, kind, a, [roles["Teacher"]])]}, admin=True))
    assert codes(problems) == [("ERR_NON_EXISTENT_CHILD_ENTITY", 0)]
    # removing every role is allowed: the membership stays, roleless
    svc.data(remove, {"input": [role_element(org, kind, a, [roles["Parent"], roles["Student"]])]}, admin=True)
    assert roles_of(svc, org, kind, a) == []
    assert status(svc, org, kind, a) == "active"


@pytest.mark.parametrize("kind,add", ROLE_CASES)
def test_roles_length_limits(svc, org, roles, kind, add):
    document = ROLE_DOCS[(kind, add)]
    role = roles["Parent"] if add else roles["Student"]
    a = org.students[0]
    for length, code in ((0, "ERR_INVALID_ARRAY_MIN_LENGTH"), (51, "ERR_INVALID_ARRAY_MAX_LENGTH")):
        errors = svc.errors(document, {"input": [role_element(org, kind, a, [role])] * length}, admin=True)
        assert outer_length_code(errors) == code
    many = [str(uuid.uuid4()) for _ in range(51)]
    for role_ids, code in (([], "ERR_INVALID_ARRAY_MIN_LENGTH"), (many, "ERR_INVALID_ARRAY_MAX_LENGTH"),
                           ([role, role], "ERR_DUPLICATE_ATTRIBUTE_VALUES")):
        problems = problems_of(svc.errors(document, {"input": [role_element(org, kind, a, role_ids)]}, admin=True))
        assert code in [p["code"] for p in problems], problems
    assert roles_of(svc, org, kind, a) == ["Student"]


@pytest.mark.parametrize("kind,add", ROLE_CASES)
def test_roles_each_error_code_and_all_or_nothing(svc, org, roles, kind, add):
    document = ROLE_DOCS[(kind, add)]
    a, b, c = org.students
    # b loses its membership's active status
    run_status(svc, org, kind, "remove", [b], admin=True)
    stranger = create_users(svc, ["Stranger"])["Stranger"][0]
    held, not_held = roles["Student"], roles["Parent"]
    good = role_element(org, kind, a, [not_held if add else held])
    elements = [
        good,  # valid, must not be written
        role_element(org, kind, b, [not_held]),  # inactive membership
        role_element(org, kind, stranger, [not_held]),  # no membership
        role_element(org, kind, org.teacher, [str(uuid.uuid4())]),  # unknown role
        role_element(org, kind, a, [not_held]),  # the (parent, user) pair again
        role_element(org, kind, c, [held if add else not_held]),  # held on add / not held on remove
        role_element(org, kind, str(uuid.uuid4()), [not_held], parent=None),  # unknown user
        role_element(org, kind, c, [not_held], parent=str(uuid.uuid4())),  # unknown parent
    ]
    problems = problems_of(svc.errors(document, {"input": elements}, admin=True))
    assert sorted(codes(problems)) == sorted([
        ("ERR_NON_EXISTENT_CHILD_ENTITY", 1),
        ("ERR_NON_EXISTENT_CHILD_ENTITY", 2),
        ("ERR_NON_EXISTENT_ENTITY", 3),
        ("ERR_DUPLICATE_INPUT_ATTRIBUTE_VALUE", 4),
        ("ERR_DUPLICATE_CHILD_ENTITY" if add else "ERR_NON_EXISTENT_CHILD_ENTITY", 5),
        ("ERR_NON_EXISTENT_ENTITY", 6),
        ("ERR_NON_EXISTENT_ENTITY", 7),
    ]), [(p["code"], p["index"], p["message"]) for p in problems]
    assert roles_of(svc, org, kind, a) == ["Student"]


@pytest.mark.parametrize("kind", ["org", "school"])
def test_a_custom_role_of_another_organization_is_refused(svc, org, roles, kind, postgres_uri):
    import psycopg

    other = new_org(svc, roles)
    custom = str(uuid.uuid4())
    with psycopg.connect(postgres_uri, autocommit=True, options=f"-c search_path={svc.db_schema}") as conn:
        conn.execute('INSERT INTO role (role_id, role_name, "organizationOrganizationId") VALUES (%s, %s, %s)',
                     [custom, "Custom", other.id])
    problems = problems_of(svc.errors(ROLE_DOCS[(kind, True)],
                                      {"input": [role_element(org, kind, org.students[0], [custom])]}, admin=True))
    assert codes(problems) == [("ERR_NON_EXISTENT_ENTITY", 0)]
    svc.data(ROLE_DOCS[(kind, True)], {"input": [role_element(other, kind, other.students[0], [custom])]}, admin=True)
    assert roles_of(svc, other, kind, other.students[0]) == ["Custom", "Student"]


@pytest.mark.parametrize("kind,add", ROLE_CASES)
@pytest.mark.parametrize("who", ["teacher", "student"])
def test_roles_refused_to_teacher_and_student(svc, org, roles, kind, add, who):
    caller = org.teacher if who == "teacher" else org.students[0]
    element = role_element(org, kind, org.students[1], [roles["Parent"] if add else roles["Student"]])
    details = refused(svc, ROLE_DOCS[(kind, add)], {"input": [element]}, org.token(caller), "edit_users_40330")
    assert details["orgs"] == org.id
    assert roles_of(svc, org, kind, org.students[1]) == ["Student"]


@pytest.mark.parametrize("add", [True, False])
def test_organization_roles_refused_to_a_school_admin(svc, org, roles, add):
    element = role_element(org, "org", org.students[1], [roles["Parent"] if add else roles["Student"]])
    refused(svc, ROLE_DOCS[("org", add)], {"input": [element]}, org.token(org.school_admin), "edit_users_40330")


@pytest.mark.parametrize("kind", ["org", "school"])
def test_an_organization_admin_changes_roles_in_their_organization_only(svc, org, roles, kind):
    token = org.token(org.owner)
    svc.data(ROLE_DOCS[(kind, True)], {"input": [role_element(org, kind, org.students[1], [roles["Parent"]])]},
             token=token)
    assert roles_of(svc, org, kind, org.students[1]) == ["Parent", "Student"]
    other = new_org(svc, roles)
    details = refused(svc, ROLE_DOCS[(kind, True)],
                      {"input": [role_element(other, kind, other.students[1], [roles["Parent"]])]}, token,
                      "edit_users_40330")
    assert details["orgs"] == other.id


# =============================== malformed ids ===============================


def _malformed_cases():
    bad = "not-a-uuid"
    return [
        pytest.param(UPDATE_USERS, lambda o, r: [{"id": bad, "givenName": "X"}], id="updateUsers"),
        *(pytest.param(document, lambda o, r, k=key: [{k: o.id if k == "organizationId" else o.school,
                                                         "userIds": [o.students[0], bad]}], id=document.split()[1])
          for document, key in ((REMOVE_USERS_FROM_ORGANIZATIONS, "organizationId"),
                                (REACTIVATE_USERS_FROM_ORGANIZATIONS, "organizationId"),
                                (DELETE_USERS_FROM_ORGANIZATIONS, "organizationId"),
                                (REMOVE_USERS_FROM_SCHOOLS, "schoolId"), (REACTIVATE_USERS_FROM_SCHOOLS, "schoolId"),
                                (DELETE_USERS_FROM_SCHOOLS, "schoolId"))),
        *(pytest.param(document, lambda o, r, k=kind: [role_element(o, k, o.students[0], [r["Parent"], bad])],
                       id=document.split()[1])
          for (kind, _add), document in ROLE_DOCS.items()),
    ]


@pytest.mark.parametrize("document,elements", _malformed_cases())
def test_a_malformed_id_is_postgres_refusal_and_nothing_is_written(svc, org, roles, document, elements):
    before = memberships(svc, org.students[0])
    errors = svc.errors(document, {"input": elements(org, roles)}, admin=True)
    assert len(errors) == 1, errors
    assert errors[0]["message"] == 'invalid input syntax for type uuid: "not-a-uuid"'
    assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert memberships(svc, org.students[0]) == before


def test_primary_user_alone_is_an_update(svc, org):
    svc.data(UPDATE_USERS, {"input": [{"id": org.students[0], "primaryUser": True}]}, admin=True)
