"""Seeding mutations: what they return, the limits they enforce, and that a refused call
changes nothing."""

from __future__ import annotations

import uuid

from .world import (
    ADD_CLASSES_TO_SCHOOLS,
    ADD_STUDENTS_TO_CLASSES,
    ADD_TEACHERS_TO_CLASSES,
    ADD_USERS_TO_ORGANIZATIONS,
    ADD_USERS_TO_SCHOOLS,
    CREATE_CLASSES,
    CREATE_ORGANIZATIONS,
    CREATE_USERS,
    user_input,
)

USERS_BY_EMAIL = """
query UsersByEmail($email: String!) {
  usersConnection(direction: FORWARD, filter: { email: { operator: eq, value: $email } }) {
    totalCount
  }
}"""

MEMBERS_OF_ORGANIZATION = """
query MembersOfOrganization($organizationId: UUID!) {
  usersConnection(direction: FORWARD, filter: { organizationId: { operator: eq, value: $organizationId } }) {
    totalCount
    edges { node { id } }
  }
}"""


def bad_input_errors(errors: list[dict]) -> list[dict]:
    """The problems of the single ERR_API_BAD_INPUT error, asserting its shape."""
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["message"] == "ERR_API_BAD_INPUT"
    assert error["extensions"]["code"] == "ERR_API_BAD_INPUT"
    problems = error["extensions"]["exception"]["errors"]
    assert error["extensions"].get("errors", problems) == problems
    for problem in problems:
        assert set(problem) >= {"code", "message", "entity", "attribute", "index"}
    return problems


def new_user(service, label: str) -> str:
    email = f"{label}.{uuid.uuid4().hex[:8]}@example.test"
    users = service.data(CREATE_USERS, {"input": [user_input(label, email)]}, admin=True)["createUsers"]["users"]
    return users[0]["id"]


def test_create_users_returns_the_created_nodes(world):
    users = world.mutation_results["createUsers"]["users"]
    assert len(users) == 6
    assert all(uuid.UUID(user["id"]) for user in users)
    assert users[0]["givenName"] == "Owner"
    assert users[0]["familyName"] == "Tester"
    assert users[0]["contactInfo"]["email"] == world.emails["owner"]
    assert users[0]["gender"] == "female"
    assert users[0]["status"] == "active"


def test_create_organizations_makes_the_owner_an_organization_admin(world, service):
    orgs = world.mutation_results["createOrganizations"]["organizations"]
    assert [org["name"] for org in orgs] == [f"Org A {world.tag}", f"Org B {world.tag}"]
    assert orgs[0]["owners"] == [{"id": world.owner, "email": world.emails["owner"]}]
    membership = service.data(
        """query OwnerRoles($id: ID!, $org: UUID!) {
          userNode(id: $id) {
            organizationMembershipsConnection(count: 1, filter: { organizationId: { operator: eq, value: $org } }) {
              edges { node { organizationId rolesConnection { edges { node { name system } } } } }
            }
          }
        }""",
        {"id": world.owner, "org": world.org_a},
        admin=True,
    )["userNode"]["organizationMembershipsConnection"]["edges"]
    roles = [edge["node"]["name"] for edge in membership[0]["node"]["rolesConnection"]["edges"]]
    assert roles == ["Organization Admin"]


def test_schools_classes_and_memberships_are_returned_with_their_contents(world):
    results = world.mutation_results
    schools = results["createSchools"]["schools"]
    assert [s["organizationId"] for s in schools] == [world.org_a, world.org_a]
    assert schools[1]["shortCode"] == "S2"
    assert [c["name"] for c in results["createClasses"]["classes"]] == [f"Class 1 {world.tag}", f"Class 2 {world.tag}"]
    linked = results["addClassesToSchools"]["schools"]
    assert [s["classesConnection"]["edges"][0]["node"]["id"] for s in linked] == [world.class1, world.class2]
    # Owner plus three students at that point.
    assert results["addUsersToOrganizations"]["organizations"][0]["organizationMembershipsConnection"]["totalCount"] == 4
    assert [s["schoolMembershipsConnection"]["totalCount"] for s in results["addUsersToSchools"]["schools"]] == [2, 1]
    assert [c["studentsConnection"]["totalCount"] for c in results["addStudentsToClasses"]["classes"]] == [2, 1]
    assert results["addTeachersToClasses"]["classes"][0]["teachersConnection"]["totalCount"] == 1


def test_more_than_50_elements_are_refused_and_nothing_is_created(service):
    email = f"many.{uuid.uuid4().hex[:8]}@example.test"
    errors = service.errors(CREATE_USERS, {"input": [user_input("Many", email)] * 51}, admin=True)
    # The outer length check is not an input-error collection: INTERNAL_SERVER_ERROR, its code in
    # extensions.exception.code (MUTATIONS.md).
    assert len(errors) == 1, errors
    assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert errors[0]["extensions"]["exception"]["code"] == "ERR_INVALID_ARRAY_MAX_LENGTH"
    assert service.data(USERS_BY_EMAIL, {"email": email}, admin=True)["usersConnection"]["totalCount"] == 0


def test_fifty_elements_are_accepted(service):
    email = f"fifty.{uuid.uuid4().hex[:8]}@example.test"
    users = service.data(CREATE_USERS, {"input": [user_input("Fifty", email)] * 50}, admin=True)["createUsers"]["users"]
    assert len(users) == 50
    assert service.data(USERS_BY_EMAIL, {"email": email}, admin=True)["usersConnection"]["totalCount"] == 50


def test_same_organization_twice_in_one_call_is_refused(world, service):
    newcomer = new_user(service, "Twice")
    entry = {"organizationId": world.org_a, "organizationRoleIds": [world.roles["Student"]], "userIds": [newcomer]}
    problems = bad_input_errors(service.errors(ADD_USERS_TO_ORGANIZATIONS, {"input": [entry, entry]}, admin=True))
    assert [(p["code"], p["index"]) for p in problems] == [("ERR_DUPLICATE_ATTRIBUTE_VALUES", 1)]
    members = service.data(MEMBERS_OF_ORGANIZATION, {"organizationId": world.org_a}, admin=True)
    assert newcomer not in {edge["node"]["id"] for edge in members["usersConnection"]["edges"]}


def test_same_school_twice_in_one_call_is_refused(world, service):
    entry = {"schoolId": world.school1, "schoolRoleIds": [world.roles["Student"]], "userIds": [world.student1]}
    problems = bad_input_errors(service.errors(ADD_USERS_TO_SCHOOLS, {"input": [entry, entry]}, admin=True))
    assert problems[0]["code"] == "ERR_DUPLICATE_ATTRIBUTE_VALUES"
    assert problems[0]["attribute"] == "schoolId"


def test_same_class_twice_in_one_call_is_refused(world, service):
    students = {"classId": world.class1, "studentIds": [world.student1]}
    problems = bad_input_errors(service.errors(ADD_STUDENTS_TO_CLASSES, {"input": [students, students]}, admin=True))
    assert problems[0]["code"] == "ERR_DUPLICATE_ATTRIBUTE_VALUES"
    teachers = {"classId": world.class1, "teacherIds": [world.teacher]}
    problems = bad_input_errors(service.errors(ADD_TEACHERS_TO_CLASSES, {"input": [teachers, teachers]}, admin=True))
    assert problems[0]["code"] == "ERR_DUPLICATE_ATTRIBUTE_VALUES"


def test_a_non_member_cannot_join_a_school_or_class(world, service):
    stranger = new_user(service, "Stranger")
    problems = bad_input_errors(
        service.errors(
            ADD_USERS_TO_SCHOOLS,
            {"input": [{"schoolId": world.school1, "schoolRoleIds": [world.roles["Student"]], "userIds": [stranger]}]},
            admin=True,
        )
    )
    assert [p["code"] for p in problems] == ["ERR_NON_EXISTENT_CHILD_ENTITY"]
    problems = bad_input_errors(
        service.errors(ADD_STUDENTS_TO_CLASSES, {"input": [{"classId": world.class1, "studentIds": [stranger]}]}, admin=True)
    )
    assert [p["code"] for p in problems] == ["ERR_NON_EXISTENT_CHILD_ENTITY"]
    problems = bad_input_errors(
        service.errors(ADD_TEACHERS_TO_CLASSES, {"input": [{"classId": world.class1, "teacherIds": [stranger]}]}, admin=True)
    )
    assert [p["code"] for p in problems] == ["ERR_NON_EXISTENT_CHILD_ENTITY"]


def test_unknown_ids_are_refused_and_the_valid_part_is_not_applied(world, service):
    newcomer = new_user(service, "Atomic")
    unknown_org = str(uuid.uuid4())
    problems = bad_input_errors(
        service.errors(
            ADD_USERS_TO_ORGANIZATIONS,
            {"input": [
                {"organizationId": world.org_a, "organizationRoleIds": [world.roles["Student"]], "userIds": [newcomer]},
                {"organizationId": unknown_org, "organizationRoleIds": [world.roles["Student"]], "userIds": [newcomer]},
            ]},
            admin=True,
        )
    )
    assert [(p["code"], p["entity"], p["index"]) for p in problems] == [("ERR_NON_EXISTENT_ENTITY", "Organization", 1)]
    members = service.data(MEMBERS_OF_ORGANIZATION, {"organizationId": world.org_a}, admin=True)
    assert newcomer not in {edge["node"]["id"] for edge in members["usersConnection"]["edges"]}
    problems = bad_input_errors(
        service.errors(CREATE_CLASSES, {"input": [{"organizationId": unknown_org, "name": "Nowhere"}]}, admin=True)
    )
    assert problems[0]["code"] == "ERR_NONEXISTENT_ENTITY_OR_INACTIVE_STATUS"


def test_organization_names_longer_than_30_characters_are_refused(service):
    owner = new_user(service, "LongName")
    problems = bad_input_errors(
        service.errors(CREATE_ORGANIZATIONS, {"input": [{"userId": owner, "organizationName": "x" * 31}]}, admin=True)
    )
    assert [(p["code"], p["attribute"]) for p in problems] == [("ERR_INVALID_MAX_LENGTH", "organizationName")]
    created = service.data(CREATE_ORGANIZATIONS, {"input": [{"userId": owner, "organizationName": "y" * 30}]}, admin=True)
    assert created["createOrganizations"]["organizations"][0]["name"] == "y" * 30


def test_a_user_may_own_only_one_organization(world, service):
    problems = bad_input_errors(
        service.errors(
            CREATE_ORGANIZATIONS, {"input": [{"userId": world.owner, "organizationName": "Second"}]}, admin=True
        )
    )
    assert [p["code"] for p in problems] == ["ERR_USER_ALREADY_OWNS_ORGANIZATION"]


def test_a_student_token_cannot_seed(world, service, student_token):
    errors = service.errors(
        CREATE_CLASSES, {"input": [{"organizationId": world.org_a, "name": "Not allowed"}]}, token=student_token
    )
    assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert errors[0]["message"] == (
        f"User({world.student1}) does not have Permission(create_class_20224) in Organizations({world.org_a})"
    )


STUDENTS_OF_CLASS = """
query StudentsOfClass($classId: ID!) {
  classNode(id: $classId) { studentsConnection { totalCount } }
}"""


def test_a_repeated_add_is_refused_whole_with_duplicate_child_entity(world, service):
    # As the real service (MUTATIONS.md): adds are not idempotent, and a call with one element
    # already in place writes nothing, not even its new elements.
    repeats = [
        (ADD_USERS_TO_ORGANIZATIONS, {"organizationId": world.org_a, "organizationRoleIds": [world.roles["Student"]],
                                      "userIds": [world.student1]}),
        (ADD_USERS_TO_SCHOOLS, {"schoolId": world.school1, "schoolRoleIds": [world.roles["Student"]],
                                "userIds": [world.student1]}),
        (ADD_CLASSES_TO_SCHOOLS, {"schoolId": world.school1, "classIds": [world.class1]}),
        (ADD_TEACHERS_TO_CLASSES, {"classId": world.class1, "teacherIds": [world.teacher]}),
    ]
    for document, element in repeats:
        problems = bad_input_errors(service.errors(document, {"input": [element]}, admin=True))
        assert [(p["code"], p["index"]) for p in problems] == [("ERR_DUPLICATE_CHILD_ENTITY", 0)], document
    before = service.data(STUDENTS_OF_CLASS, {"classId": world.class1}, admin=True)["classNode"]
    problems = bad_input_errors(service.errors(
        ADD_STUDENTS_TO_CLASSES, {"input": [{"classId": world.class1, "studentIds": [world.student3, world.student1]}]},
        admin=True,
    ))
    assert [(p["code"], p["index"]) for p in problems] == [("ERR_DUPLICATE_CHILD_ENTITY", 0)]
    after = service.data(STUDENTS_OF_CLASS, {"classId": world.class1}, admin=True)["classNode"]
    assert after == before  # student3 (not on class1's roster) was not added either


def test_a_class_name_is_taken_once_per_organization(world, service):
    problems = bad_input_errors(service.errors(
        CREATE_CLASSES, {"input": [{"organizationId": world.org_a, "name": f"Class 1 {world.tag}"}]}, admin=True
    ))
    assert [(p["code"], p["attribute"]) for p in problems] == [("ERR_DUPLICATE_CHILD_ENTITY_ATTRIBUTE", "name")]
    # Another organization may use it.
    created = service.data(
        CREATE_CLASSES, {"input": [{"organizationId": world.org_b, "name": f"Class 1 {world.tag}"}]}, admin=True
    )
    assert len(created["createClasses"]["classes"]) == 1


USERS_MATCHING = """
query UsersMatching($filter: UserFilter!) {
  usersConnection(direction: FORWARD, directionArgs: { count: 50 }, filter: $filter) {
    totalCount
  }
}"""


def test_a_filter_given_in_variables_is_accepted(world, service):
    # Enum values (`operator`) in variables, as the seeder's lookups send them.
    flt = {"OR": [{"email": {"operator": "eq", "value": world.emails[n]}} for n in ("owner", "teacher")]}
    data = service.data(USERS_MATCHING, {"filter": flt}, admin=True)
    assert data["usersConnection"]["totalCount"] == 2


def test_a_nested_id_list_is_refused_empty_or_with_an_id_twice(world, service):
    # MUTATIONS.md: 1 to 50 ids in each nested list, and an id twice in one gives
    # ERR_DUPLICATE_ATTRIBUTE_VALUES; nothing is written.
    cases = [
        (ADD_USERS_TO_SCHOOLS, {"schoolId": world.school2, "schoolRoleIds": [world.roles["Student"]],
                                "userIds": [world.student3, world.student3]}, "ERR_DUPLICATE_ATTRIBUTE_VALUES"),
        (ADD_USERS_TO_SCHOOLS, {"schoolId": world.school2, "schoolRoleIds": [world.roles["Student"]],
                                "userIds": []}, "ERR_INVALID_ARRAY_MIN_LENGTH"),
        (ADD_STUDENTS_TO_CLASSES, {"classId": world.class2, "studentIds": [world.student3, world.student3.upper()]},
         "ERR_DUPLICATE_ATTRIBUTE_VALUES"),
        (ADD_TEACHERS_TO_CLASSES, {"classId": world.class2, "teacherIds": []}, "ERR_INVALID_ARRAY_MIN_LENGTH"),
    ]
    before = service.data(STUDENTS_OF_CLASS, {"classId": world.class2}, admin=True)["classNode"]
    for document, element, code in cases:
        problems = bad_input_errors(service.errors(document, {"input": [element]}, admin=True))
        assert [(p["code"], p["index"]) for p in problems] == [(code, 0)], (document, problems)
    assert service.data(STUDENTS_OF_CLASS, {"classId": world.class2}, admin=True)["classNode"] == before
