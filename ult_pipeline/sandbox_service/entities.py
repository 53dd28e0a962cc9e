"""What each node type reads from which tables: select lists, sort keys and filters.

Rows keep the real columns' names (plus `id`), so one row serves both the connection
node types and the deprecated types (`User`, `Class`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# A filter handler gets (operator, value, case_insensitive) and returns (sql, params).
Clause = tuple[str, list]
RelationHandler = Callable[[str, object], Clause]


@dataclass(frozen=True)
class Column:
    """A filterable column: `kind` is string, uuid, boolean or uuid_exclusive."""

    expr: str
    kind: str


@dataclass(frozen=True)
class Relation:
    """A filter on a related table: `template` holds `<cmp>` where the comparison goes.

    `null_template` answers `isNull` for exclusive filters: rows with no related row.
    """

    template: str
    cast: str = "uuid"
    null_template: str | None = None


@dataclass(frozen=True)
class Entity:
    name: str
    source: str
    alias: str
    id_expr: str
    id_cast: str
    select: str
    sort_fields: Mapping[str, str] = field(default_factory=dict)
    filters: Mapping[str, Column | Relation] = field(default_factory=dict)


USER = Entity(
    name="User",
    source='"user" u',
    alias="u",
    id_expr="u.user_id",
    id_cast="uuid",
    select=(
        "u.user_id::text AS id, u.user_id::text AS user_id, u.given_name, u.family_name, u.email, "
        "u.phone, u.username, u.avatar, u.status, u.date_of_birth, u.gender, u.alternate_email, "
        'u.alternate_phone, u."primary"'
    ),
    sort_fields={"givenName": "coalesce(u.given_name, '')", "familyName": "coalesce(u.family_name, '')"},
    filters={
        "userId": Column("u.user_id", "uuid"),
        "userStatus": Column("u.status", "string"),
        "givenName": Column("u.given_name", "string"),
        "familyName": Column("u.family_name", "string"),
        "avatar": Column("u.avatar", "string"),
        "email": Column("u.email", "string"),
        "phone": Column("u.phone", "string"),
        "username": Column("u.username", "string"),
        "organizationId": Relation(
            'EXISTS (SELECT 1 FROM organization_membership f WHERE f."userUserId" = u.user_id '
            'AND f."organizationOrganizationId" <cmp>)'
        ),
        "organizationUserStatus": Relation(
            'EXISTS (SELECT 1 FROM organization_membership f WHERE f."userUserId" = u.user_id '
            "AND f.status <cmp>)",
            cast="varchar",
        ),
        "roleId": Relation(
            "EXISTS (SELECT 1 FROM role_memberships_organization_membership f "
            'WHERE f."organizationMembershipUserId" = u.user_id AND f."roleRoleId" <cmp>) '
            "OR EXISTS (SELECT 1 FROM role_school_memberships_school_membership f "
            'WHERE f."schoolMembershipUserId" = u.user_id AND f."roleRoleId" <cmp>)'
        ),
        "schoolId": Relation(
            'EXISTS (SELECT 1 FROM school_membership f WHERE f."userUserId" = u.user_id '
            'AND f."schoolSchoolId" <cmp>)',
            null_template='NOT EXISTS (SELECT 1 FROM school_membership f WHERE f."userUserId" = u.user_id)',
        ),
        "schoolMembershipStatus": Relation(
            'EXISTS (SELECT 1 FROM school_membership f WHERE f."userUserId" = u.user_id AND f.status <cmp>)',
            cast="varchar",
        ),
        "classId": Relation(
            'EXISTS (SELECT 1 FROM user_classes_studying_class f WHERE f."userUserId" = u.user_id '
            'AND f."classClassId" <cmp>) OR EXISTS (SELECT 1 FROM user_classes_teaching_class f '
            'WHERE f."userUserId" = u.user_id AND f."classClassId" <cmp>)',
            null_template=(
                'NOT EXISTS (SELECT 1 FROM user_classes_studying_class f WHERE f."userUserId" = u.user_id) '
                'AND NOT EXISTS (SELECT 1 FROM user_classes_teaching_class f WHERE f."userUserId" = u.user_id)'
            ),
        ),
    },
)

ORGANIZATION = Entity(
    name="Organization",
    source="organization o",
    alias="o",
    id_expr="o.organization_id",
    id_cast="uuid",
    select=(
        "o.organization_id::text AS id, o.organization_id::text AS organization_id, "
        'o.organization_name, o.address1, o.address2, o.phone, o."shortCode", o.status, '
        'o."primaryContactUserId"::text AS primary_contact_id'
    ),
    sort_fields={
        "name": "coalesce(o.organization_name, '')",
        "ownerEmail": (
            "coalesce((SELECT ou.email FROM organization_ownership oo JOIN \"user\" ou "
            "ON ou.user_id = oo.user_id WHERE oo.organization_id = o.organization_id LIMIT 1), '')"
        ),
    },
    filters={
        "id": Column("o.organization_id", "uuid"),
        "name": Column("o.organization_name", "string"),
        "phone": Column("o.phone", "string"),
        "shortCode": Column('o."shortCode"', "string"),
        "status": Column("o.status", "string"),
        "ownerUserId": Relation(
            "EXISTS (SELECT 1 FROM organization_ownership f WHERE f.organization_id = o.organization_id "
            "AND f.user_id <cmp>)"
        ),
        "ownerUserEmail": Relation(
            "EXISTS (SELECT 1 FROM organization_ownership f JOIN \"user\" fu ON fu.user_id = f.user_id "
            "WHERE f.organization_id = o.organization_id AND fu.email <cmp>)",
            cast="varchar",
        ),
        "ownerUsername": Relation(
            "EXISTS (SELECT 1 FROM organization_ownership f JOIN \"user\" fu ON fu.user_id = f.user_id "
            "WHERE f.organization_id = o.organization_id AND fu.username <cmp>)",
            cast="varchar",
        ),
        "userId": Relation(
            'EXISTS (SELECT 1 FROM organization_membership f WHERE f."organizationOrganizationId" = '
            'o.organization_id AND f."userUserId" <cmp>)'
        ),
    },
)

SCHOOL = Entity(
    name="School",
    source="school s",
    alias="s",
    id_expr="s.school_id",
    id_cast="uuid",
    select=(
        "s.school_id::text AS id, s.school_id::text AS school_id, s.school_name, s.shortcode, "
        's.status, s."organizationOrganizationId"::text AS organization_id'
    ),
    sort_fields={"id": "s.school_id::text", "name": "coalesce(s.school_name, '')", "shortCode": "coalesce(s.shortcode, '')"},
    filters={
        "schoolId": Column("s.school_id", "uuid"),
        "name": Column("s.school_name", "string"),
        "shortCode": Column("s.shortcode", "string"),
        "status": Column("s.status", "string"),
        "organizationId": Column('s."organizationOrganizationId"', "uuid"),
        "userId": Relation(
            'EXISTS (SELECT 1 FROM school_membership f WHERE f."schoolSchoolId" = s.school_id '
            'AND f."userUserId" <cmp>)'
        ),
    },
)

CLASS = Entity(
    name="Class",
    source="class c",
    alias="c",
    id_expr="c.class_id",
    id_cast="uuid",
    select=(
        "c.class_id::text AS id, c.class_id::text AS class_id, c.class_name, c.shortcode, c.status, "
        'c."organizationOrganizationId"::text AS organization_id'
    ),
    sort_fields={"id": "c.class_id::text", "name": "coalesce(c.class_name, '')"},
    filters={
        "id": Column("c.class_id", "uuid"),
        "name": Column("c.class_name", "string"),
        "status": Column("c.status", "string"),
        "organizationId": Column('c."organizationOrganizationId"', "uuid"),
        "schoolId": Relation(
            'EXISTS (SELECT 1 FROM school_classes_class f WHERE f."classClassId" = c.class_id '
            'AND f."schoolSchoolId" <cmp>)',
            null_template='NOT EXISTS (SELECT 1 FROM school_classes_class f WHERE f."classClassId" = c.class_id)',
        ),
        "studentId": Relation(
            'EXISTS (SELECT 1 FROM user_classes_studying_class f WHERE f."classClassId" = c.class_id '
            'AND f."userUserId" <cmp>)'
        ),
        "teacherId": Relation(
            'EXISTS (SELECT 1 FROM user_classes_teaching_class f WHERE f."classClassId" = c.class_id '
            'AND f."userUserId" <cmp>)'
        ),
    },
)

ROLE = Entity(
    name="Role",
    source="role r",
    alias="r",
    id_expr="r.role_id",
    id_cast="uuid",
    select=(
        "r.role_id::text AS id, r.role_id::text AS role_id, r.role_name, r.role_description, "
        'r.status, r.system_role, r."organizationOrganizationId"::text AS organization_id'
    ),
    sort_fields={"id": "r.role_id::text", "name": "coalesce(r.role_name, '')"},
    filters={
        "name": Column("r.role_name", "string"),
        "status": Column("r.status", "string"),
        "system": Column("r.system_role", "boolean"),
        "organizationId": Column('r."organizationOrganizationId"', "uuid"),
        "membershipOrganizationUserId": Relation(
            'EXISTS (SELECT 1 FROM role_memberships_organization_membership f WHERE f."roleRoleId" = '
            'r.role_id AND f."organizationMembershipUserId" <cmp>)'
        ),
        "membershipOrganizationId": Relation(
            'EXISTS (SELECT 1 FROM role_memberships_organization_membership f WHERE f."roleRoleId" = '
            'r.role_id AND f."organizationMembershipOrganizationId" <cmp>)'
        ),
        "schoolUserId": Relation(
            'EXISTS (SELECT 1 FROM role_school_memberships_school_membership f WHERE f."roleRoleId" = '
            'r.role_id AND f."schoolMembershipUserId" <cmp>)'
        ),
        "schoolId": Relation(
            'EXISTS (SELECT 1 FROM role_school_memberships_school_membership f WHERE f."roleRoleId" = '
            'r.role_id AND f."schoolMembershipSchoolId" <cmp>)'
        ),
    },
)

PERMISSION = Entity(
    name="Permission",
    source="permission p",
    alias="p",
    id_expr="p.permission_id",
    id_cast="varchar",
    select=(
        "p.permission_id AS id, p.permission_id, p.permission_name, p.permission_category, "
        "p.permission_group, p.permission_level, p.permission_description, p.allow"
    ),
    sort_fields={
        "id": "p.permission_id",
        "name": "p.permission_name",
        "category": "coalesce(p.permission_category, '')",
        "group": "coalesce(p.permission_group, '')",
        "level": "coalesce(p.permission_level, '')",
    },
    filters={
        "name": Column("p.permission_name", "string"),
        "allow": Column("p.allow", "boolean"),
        "roleId": Relation(
            'EXISTS (SELECT 1 FROM permission_roles_role f WHERE f."permissionPermissionId" = '
            'p.permission_id AND f."roleRoleId" <cmp>)'
        ),
    },
)

ORGANIZATION_MEMBERSHIP = Entity(
    name="OrganizationMembership",
    source="organization_membership om",
    alias="om",
    id_expr="(om.user_id::text || ':' || om.organization_id::text)",
    id_cast="text",
    select=(
        "om.user_id::text AS user_id, om.organization_id::text AS organization_id, om.shortcode, "
        "om.status, om.join_timestamp"
    ),
    sort_fields={"userId": "om.user_id::text", "organizationId": "om.organization_id::text"},
    filters={
        "shortCode": Column("om.shortcode", "string"),
        "organizationId": Column("om.organization_id", "uuid"),
        "userId": Column("om.user_id", "uuid"),
        "status": Column("om.status", "string"),
        "roleId": Relation(
            "EXISTS (SELECT 1 FROM role_memberships_organization_membership f WHERE "
            'f."organizationMembershipUserId" = om.user_id AND '
            'f."organizationMembershipOrganizationId" = om.organization_id AND f."roleRoleId" <cmp>)'
        ),
    },
)

SCHOOL_MEMBERSHIP = Entity(
    name="SchoolMembership",
    source="school_membership sm",
    alias="sm",
    id_expr="(sm.user_id::text || ':' || sm.school_id::text)",
    id_cast="text",
    select="sm.user_id::text AS user_id, sm.school_id::text AS school_id, sm.status, sm.join_timestamp",
    sort_fields={"userId": "sm.user_id::text", "schoolId": "sm.school_id::text"},
    filters={
        "userId": Column("sm.user_id", "uuid"),
        "schoolId": Column("sm.school_id", "uuid"),
        "status": Column("sm.status", "string"),
        "roleId": Relation(
            "EXISTS (SELECT 1 FROM role_school_memberships_school_membership f WHERE "
            'f."schoolMembershipUserId" = sm.user_id AND f."schoolMembershipSchoolId" = sm.school_id '
            'AND f."roleRoleId" <cmp>)'
        ),
        "organizationId": Relation(
            "EXISTS (SELECT 1 FROM school f WHERE f.school_id = sm.school_id "
            'AND f."organizationOrganizationId" <cmp>)'
        ),
    },
)

# Matches no row: stands in for an id argument that is not a UUID.
NO_ID = "00000000-0000-0000-0000-000000000000"
