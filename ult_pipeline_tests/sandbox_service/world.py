"""A small school world seeded through the API, in the order the real service accepts.

Organization A: owner (Organization Admin), teacher T (teaches class 1), students S1 and
S2 (school 1, class 1), student S3 (school 2, class 2). Organization B: its owner only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

CREATE_USERS = """
mutation CreateUsers($input: [CreateUserInput!]!) {
  createUsers(input: $input) {
    users { id givenName familyName contactInfo { email phone } username gender dateOfBirth status }
  }
}"""

CREATE_ORGANIZATIONS = """
mutation CreateOrganizations($input: [CreateOrganizationInput!]!) {
  createOrganizations(input: $input) { organizations { id name status shortCode owners { id email } } }
}"""

CREATE_SCHOOLS = """
mutation CreateSchools($input: [CreateSchoolInput!]!) {
  createSchools(input: $input) { schools { id name organizationId status shortCode } }
}"""

CREATE_CLASSES = """
mutation CreateClasses($input: [CreateClassInput!]!) {
  createClasses(input: $input) { classes { id name status } }
}"""

ADD_CLASSES_TO_SCHOOLS = """
mutation AddClassesToSchools($input: [AddClassesToSchoolInput!]!) {
  addClassesToSchools(input: $input) {
    schools { id classesConnection { totalCount edges { node { id } } } }
  }
}"""

ADD_USERS_TO_ORGANIZATIONS = """
mutation AddUsersToOrganizations($input: [AddUsersToOrganizationInput!]!) {
  addUsersToOrganizations(input: $input) {
    organizations { id organizationMembershipsConnection { totalCount } }
  }
}"""

ADD_USERS_TO_SCHOOLS = """
mutation AddUsersToSchools($input: [AddUsersToSchoolInput!]!) {
  addUsersToSchools(input: $input) { schools { id schoolMembershipsConnection { totalCount } } }
}"""

ADD_STUDENTS_TO_CLASSES = """
mutation AddStudentsToClasses($input: [AddStudentsToClassInput!]!) {
  addStudentsToClasses(input: $input) { classes { id studentsConnection { totalCount } } }
}"""

ADD_TEACHERS_TO_CLASSES = """
mutation AddTeachersToClasses($input: [AddTeachersToClassInput!]!) {
  addTeachersToClasses(input: $input) { classes { id teachersConnection { totalCount } } }
}"""

SYSTEM_ROLES = """
query SystemRoles {
  rolesConnection(direction: FORWARD, filter: { system: { operator: eq, value: true } }) {
    totalCount
    edges { node { id name system } }
  }
}"""


@dataclass(frozen=True)
class World:
    tag: str
    roles: dict[str, str]
    owner: str
    teacher: str
    student1: str
    student2: str
    student3: str
    outsider: str
    org_a: str
    org_b: str
    school1: str
    school2: str
    class1: str
    class2: str
    emails: dict[str, str]
    mutation_results: dict[str, dict]


def user_input(given: str, email: str) -> dict:
    return {"givenName": given, "familyName": "Tester", "gender": "female", "contactInfo": {"email": email}}


def system_roles(service) -> dict[str, str]:
    edges = service.data(SYSTEM_ROLES, admin=True)["rolesConnection"]["edges"]
    return {edge["node"]["name"]: edge["node"]["id"] for edge in edges}


def seed_world(service) -> World:
    tag = uuid.uuid4().hex[:8]
    names = ["owner", "teacher", "student1", "student2", "student3", "outsider"]
    emails = {name: f"{name}.{tag}@example.test" for name in names}
    results: dict[str, dict] = {}
    results["createUsers"] = service.data(
        CREATE_USERS, {"input": [user_input(name.title(), emails[name]) for name in names]}, admin=True
    )["createUsers"]
    ids = {name: user["id"] for name, user in zip(names, results["createUsers"]["users"], strict=True)}
    roles = system_roles(service)
    results["createOrganizations"] = service.data(
        CREATE_ORGANIZATIONS,
        {"input": [
            {"userId": ids["owner"], "organizationName": f"Org A {tag}"},
            {"userId": ids["outsider"], "organizationName": f"Org B {tag}"},
        ]},
        admin=True,
    )["createOrganizations"]
    org_a, org_b = (org["id"] for org in results["createOrganizations"]["organizations"])
    results["createSchools"] = service.data(
        CREATE_SCHOOLS,
        {"input": [
            {"organizationId": org_a, "name": f"School 1 {tag}"},
            {"organizationId": org_a, "name": f"School 2 {tag}", "shortCode": "S2"},
        ]},
        admin=True,
    )["createSchools"]
    school1, school2 = (s["id"] for s in results["createSchools"]["schools"])
    results["createClasses"] = service.data(
        CREATE_CLASSES,
        {"input": [
            {"organizationId": org_a, "name": f"Class 1 {tag}"},
            {"organizationId": org_a, "name": f"Class 2 {tag}"},
        ]},
        admin=True,
    )["createClasses"]
    class1, class2 = (c["id"] for c in results["createClasses"]["classes"])
    results["addClassesToSchools"] = service.data(
        ADD_CLASSES_TO_SCHOOLS,
        {"input": [{"schoolId": school1, "classIds": [class1]}, {"schoolId": school2, "classIds": [class2]}]},
        admin=True,
    )["addClassesToSchools"]
    students = [ids["student1"], ids["student2"], ids["student3"]]
    results["addUsersToOrganizations"] = service.data(
        ADD_USERS_TO_ORGANIZATIONS,
        {"input": [{"organizationId": org_a, "organizationRoleIds": [roles["Student"]], "userIds": students}]},
        admin=True,
    )["addUsersToOrganizations"]
    service.data(
        ADD_USERS_TO_ORGANIZATIONS,
        {"input": [{"organizationId": org_a, "organizationRoleIds": [roles["Teacher"]], "userIds": [ids["teacher"]]}]},
        admin=True,
    )
    results["addUsersToSchools"] = service.data(
        ADD_USERS_TO_SCHOOLS,
        {"input": [
            {"schoolId": school1, "schoolRoleIds": [roles["Student"]], "userIds": students[:2]},
            {"schoolId": school2, "schoolRoleIds": [roles["Student"]], "userIds": students[2:]},
        ]},
        admin=True,
    )["addUsersToSchools"]
    service.data(
        ADD_USERS_TO_SCHOOLS,
        {"input": [{"schoolId": school1, "schoolRoleIds": [roles["Teacher"]], "userIds": [ids["teacher"]]}]},
        admin=True,
    )
    results["addStudentsToClasses"] = service.data(
        ADD_STUDENTS_TO_CLASSES,
        {"input": [
            {"classId": class1, "studentIds": students[:2]},
            {"classId": class2, "studentIds": students[2:]},
        ]},
        admin=True,
    )["addStudentsToClasses"]
    results["addTeachersToClasses"] = service.data(
        ADD_TEACHERS_TO_CLASSES, {"input": [{"classId": class1, "teacherIds": [ids["teacher"]]}]}, admin=True
    )["addTeachersToClasses"]
    return World(
        tag=tag, roles=roles, owner=ids["owner"], teacher=ids["teacher"], student1=ids["student1"],
        student2=ids["student2"], student3=ids["student3"], outsider=ids["outsider"], org_a=org_a, org_b=org_b,
        school1=school1, school2=school2, class1=class1, class2=class2, emails=emails, mutation_results=results,
    )
