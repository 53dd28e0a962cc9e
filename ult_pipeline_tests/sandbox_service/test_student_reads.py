"""The student landing journey (the original load test's eight requests) and what a
student may see."""

from __future__ import annotations

import logging

ME = """
query me {
  me {
    user_id user_name full_name given_name family_name email
    memberships {
      organization_id
      roles { role_id role_name }
      organization { organization_id organization_name }
      checkAllowed(permission_name: "attend_live_class_as_a_student_187")
    }
  }
}"""

MY_USER = """
query myUser {
  myUser {
    node {
      id givenName familyName avatar contactInfo { email phone }
      organizationMembershipsConnection { totalCount edges { node { organizationId } } }
      schoolMembershipsConnection { totalCount edges { node { schoolId } } }
      classesStudyingConnection { totalCount edges { node { id name } } }
      classesTeachingConnection { totalCount }
    }
    profiles { id givenName }
  }
}"""

ORG_MEMBERSHIPS = """
query orgMemberships {
  myUser {
    node {
      organizationMembershipsConnection {
        edges { node { organizationId status organization { id name } rolesConnection { edges { node { name } } } } }
      }
    }
  }
}"""

MY_USERS = "query myUsers { my_users { user_id full_name given_name family_name email } }"

USER_NODE = """
query userNode($id: ID!, $organizationId: UUID!) {
  userNode(id: $id) {
    id givenName
    organizationMembershipsConnection(count: 1, filter: { organizationId: { operator: eq, value: $organizationId } }) {
      totalCount
      edges { node { organizationId status } }
    }
  }
}"""

MY_CLASSES = """
query myClasses {
  me {
    classesStudying {
      class_id class_name
      schools { school_id school_name }
      organization { organization_id organization_name }
    }
    classesTeaching { class_id }
    school_memberships { school_id school { school_name } }
  }
}"""

PERMISSIONS = """
query permissions($organizationId: ID!, $schoolId: ID!) {
  me {
    membership(organization_id: $organizationId) {
      roles { role_name permissions { permission_id permission_name } }
      checkAllowed(permission_name: "attend_live_class_as_a_student_187")
      schoolMemberships { school_id }
    }
  }
  myUser {
    hasPermissionsInOrganization(
      organizationId: $organizationId
      permissionIds: ["attend_live_class_as_a_student_187", "view_users_40110"]
    ) { permissionId allowed }
    hasPermissionsInSchool(schoolId: $schoolId, permissionIds: ["view_my_school_20119", "view_school_20110"]) { permissionId allowed }
  }
}"""

LISTS = """
query lists($organizationId: UUID!) {
  organizationsConnection(direction: FORWARD) { totalCount edges { node { id name } } }
  schoolsConnection(direction: FORWARD) { totalCount edges { node { id name } } }
  classesConnection(direction: FORWARD) { totalCount edges { node { id name } } }
  usersConnection(
    direction: FORWARD
    directionArgs: { count: 10 }
    filter: {
      AND: [
        { organizationId: { operator: eq, value: $organizationId } }
        { organizationUserStatus: { operator: eq, value: "active" } }
      ]
    }
  ) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id } }
  }
}"""


def ids(connection: dict) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]


def test_me(world, service, student_token):
    me = service.data(ME, token=student_token)["me"]
    assert me["user_id"] == world.student1
    assert me["full_name"] == "Student1 Tester"
    assert me["email"] == world.emails["student1"]
    [membership] = me["memberships"]
    assert membership["organization"]["organization_id"] == world.org_a
    assert [role["role_name"] for role in membership["roles"]] == ["Student"]
    assert membership["checkAllowed"] is True


def test_my_user(world, service, student_token):
    my_user = service.data(MY_USER, token=student_token)["myUser"]
    node = my_user["node"]
    assert node["id"] == world.student1
    assert node["contactInfo"]["email"] == world.emails["student1"]
    assert ids(node["classesStudyingConnection"]) == [world.class1]
    assert node["classesTeachingConnection"]["totalCount"] == 0
    assert [e["node"]["schoolId"] for e in node["schoolMembershipsConnection"]["edges"]] == [world.school1]
    assert [p["id"] for p in my_user["profiles"]] == [world.student1]


def test_org_memberships(world, service, student_token):
    edges = service.data(ORG_MEMBERSHIPS, token=student_token)["myUser"]["node"]["organizationMembershipsConnection"][
        "edges"
    ]
    assert [e["node"]["organization"]["id"] for e in edges] == [world.org_a]
    assert [r["node"]["name"] for r in edges[0]["node"]["rolesConnection"]["edges"]] == ["Student"]


def test_my_users(world, service, student_token):
    users = service.data(MY_USERS, token=student_token)["my_users"]
    assert [(u["user_id"], u["email"]) for u in users] == [(world.student1, world.emails["student1"])]


def test_user_node_with_organization_filter(world, service, student_token):
    node = service.data(USER_NODE, {"id": world.student1, "organizationId": world.org_a}, token=student_token)["userNode"]
    assert node["organizationMembershipsConnection"]["totalCount"] == 1
    assert node["organizationMembershipsConnection"]["edges"][0]["node"] == {"organizationId": world.org_a, "status": "active"}


def test_user_node_of_a_classmate_is_not_visible_to_a_student(world, service, student_token):
    errors = service.errors(USER_NODE, {"id": world.student2, "organizationId": world.org_a}, token=student_token)
    assert errors[0]["extensions"]["code"] == "ERR_NON_EXISTENT_ENTITY"


def test_my_classes(world, service, student_token):
    me = service.data(MY_CLASSES, token=student_token)["me"]
    [studying] = me["classesStudying"]
    assert studying["class_id"] == world.class1
    assert [s["school_id"] for s in studying["schools"]] == [world.school1]
    assert studying["organization"]["organization_id"] == world.org_a
    assert me["classesTeaching"] == []
    assert me["school_memberships"][0]["school"]["school_name"] == f"School 1 {world.tag}"


def test_permissions(world, service, student_token):
    data = service.data(PERMISSIONS, {"organizationId": world.org_a, "schoolId": world.school1}, token=student_token)
    membership = data["me"]["membership"]
    [role] = membership["roles"]
    assert role["role_name"] == "Student"
    held = {p["permission_id"] for p in role["permissions"]}
    assert "attend_live_class_as_a_student_187" in held
    assert "view_users_40110" not in held
    assert membership["checkAllowed"] is True
    assert membership["schoolMemberships"] == [{"school_id": world.school1}]
    assert data["myUser"]["hasPermissionsInOrganization"] == [
        {"permissionId": "attend_live_class_as_a_student_187", "allowed": True},
        {"permissionId": "view_users_40110", "allowed": False},
    ]
    assert data["myUser"]["hasPermissionsInSchool"] == [
        {"permissionId": "view_my_school_20119", "allowed": True},
        {"permissionId": "view_school_20110", "allowed": False},
    ]


def test_a_student_sees_own_organization_school_classes_and_only_themselves(world, service, student_token):
    data = service.data(LISTS, {"organizationId": world.org_a}, token=student_token)
    assert ids(data["organizationsConnection"]) == [world.org_a]
    assert ids(data["schoolsConnection"]) == [world.school1]
    assert ids(data["classesConnection"]) == [world.class1]
    users = data["usersConnection"]
    assert users["totalCount"] == 1
    assert ids(users) == [world.student1]
    assert users["pageInfo"]["hasNextPage"] is False
    assert users["pageInfo"]["endCursor"] == users["edges"][0]["cursor"]


def test_deprecated_fields_log_one_warning_per_request(service, student_token, caplog):
    with caplog.at_level(logging.WARNING, logger="ult_pipeline.sandbox_service"):
        service.data(ME, token=student_token)
        service.data(MY_USER, token=student_token)
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warnings) == 1
    assert "Query.me" in warnings[0]
