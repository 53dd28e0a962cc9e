"""What a teacher and an organization admin see; roles, permissions and paging."""

from __future__ import annotations

from .conftest import make_token
from .test_student_reads import LISTS, ids

TEACHING = """
query teaching {
  myUser {
    node {
      classesTeachingConnection {
        totalCount
        edges {
          node {
            id name
            studentsConnection(count: 50) { totalCount edges { node { id } } }
            teachersConnection { totalCount edges { node { id } } }
            schoolsConnection { totalCount edges { node { id name } } }
          }
        }
      }
    }
  }
}"""

ORGANIZATION_USERS_PAGE = """
query organizationUsersPage($organizationId: UUID!, $count: PageSize, $cursor: String) {
  usersConnection(
    direction: FORWARD
    directionArgs: { count: $count, cursor: $cursor }
    filter: { organizationId: { operator: eq, value: $organizationId } }
    sort: { field: [givenName], order: ASC }
  ) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id givenName } }
  }
}"""


def test_teacher_sees_the_rosters_of_the_classes_they_teach(world, service, teacher_token):
    teaching = service.data(TEACHING, token=teacher_token)["myUser"]["node"]["classesTeachingConnection"]
    assert teaching["totalCount"] == 1
    [edge] = teaching["edges"]
    node = edge["node"]
    assert node["id"] == world.class1
    assert node["studentsConnection"]["totalCount"] == 2
    assert set(ids(node["studentsConnection"])) == {world.student1, world.student2}
    assert ids(node["teachersConnection"]) == [world.teacher]
    assert ids(node["schoolsConnection"]) == [world.school1]


def test_teacher_sees_themselves_and_their_students(world, service, teacher_token):
    data = service.data(LISTS, {"organizationId": world.org_a}, token=teacher_token)
    assert set(ids(data["usersConnection"])) == {world.teacher, world.student1, world.student2}
    assert data["usersConnection"]["totalCount"] == 3
    assert ids(data["schoolsConnection"]) == [world.school1]
    assert ids(data["classesConnection"]) == [world.class1]


def test_organization_admin_sees_the_whole_organization(world, service):
    token = make_token(world.owner, world.emails["owner"])
    data = service.data(LISTS, {"organizationId": world.org_a}, token=token)
    assert ids(data["organizationsConnection"]) == [world.org_a]
    assert set(ids(data["schoolsConnection"])) == {world.school1, world.school2}
    assert set(ids(data["classesConnection"])) == {world.class1, world.class2}
    assert data["usersConnection"]["totalCount"] == 5


def test_an_outsider_sees_nothing_of_another_organization(world, service):
    token = make_token(world.outsider, world.emails["outsider"])
    data = service.data(LISTS, {"organizationId": world.org_a}, token=token)
    assert ids(data["organizationsConnection"]) == [world.org_b]
    assert data["schoolsConnection"]["totalCount"] == 0
    assert data["usersConnection"]["totalCount"] == 0


def test_system_roles_are_the_five_builtin_ones(world):
    assert sorted(world.roles) == ["Organization Admin", "Parent", "School Admin", "Student", "Teacher"]


def test_role_permissions_and_permissions_connection(world, service):
    data = service.data(
        """query rolePermissions($roleId: ID!) {
          roleNode(id: $roleId) {
            name system
            permissionsConnection(direction: FORWARD, count: 50) { totalCount edges { node { id name } } }
          }
          permissionsConnection(direction: FORWARD, filter: { name: { operator: eq, value: "view_users_40110" } }) {
            totalCount edges { node { id name category level allow } }
          }
        }""",
        {"roleId": world.roles["Teacher"]},
        admin=True,
    )
    teacher_permissions = {e["node"]["id"] for e in data["roleNode"]["permissionsConnection"]["edges"]}
    assert "view_my_class_users_40112" in teacher_permissions
    assert "view_users_40110" not in teacher_permissions
    assert data["permissionsConnection"]["totalCount"] == 1
    assert data["permissionsConnection"]["edges"][0]["node"]["id"] == "view_users_40110"


def test_forward_paging_with_cursors_covers_every_user_once(world, service):
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = service.data(
            ORGANIZATION_USERS_PAGE, {"organizationId": world.org_a, "count": 2, "cursor": cursor}, admin=True
        )["usersConnection"]
        assert page["totalCount"] == 5
        assert len(page["edges"]) <= 2
        seen += ids(page)
        pages += 1
        assert page["pageInfo"]["hasPreviousPage"] is (cursor is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    # Sorted by givenName: Owner, Student1..3, Teacher.
    given = {world.owner: "Owner", world.student1: "Student1", world.student2: "Student2",
             world.student3: "Student3", world.teacher: "Teacher"}
    assert [given[i] for i in seen] == sorted(given.values())


def test_page_size_above_50_is_refused(world, service):
    errors = service.errors(ORGANIZATION_USERS_PAGE, {"organizationId": world.org_a, "count": 51}, admin=True)
    assert "count" in errors[0]["message"]
