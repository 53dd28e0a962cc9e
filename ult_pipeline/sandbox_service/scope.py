"""What a caller may see, from the permissions of their roles (API.md "scoped by permission").

The API key sees everything. A user sees the organizations they belong to, and within
each one what their roles' permissions allow:
- schools: all (view_school_20110) or their own (view_my_school_20119);
- classes: all (view_classes_20114), those of their schools (view_school_classes_20117)
  or those they study/teach (view_my_classes_20118);
- users: all members (view_users_40110), members of their schools
  (view_my_school_users_40111), students and teachers of the classes they teach
  (view_my_class_users_40112); always themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from .db import RequestDb
from .entities import Clause

VIEW_ALL_SCHOOLS = "view_school_20110"
VIEW_MY_SCHOOLS = "view_my_school_20119"
VIEW_ALL_CLASSES = "view_classes_20114"
VIEW_SCHOOL_CLASSES = "view_school_classes_20117"
VIEW_MY_CLASSES = "view_my_classes_20118"
VIEW_ALL_USERS = "view_users_40110"
VIEW_SCHOOL_USERS = "view_my_school_users_40111"
VIEW_CLASS_USERS = "view_my_class_users_40112"

# For one user: {org_id: [permission ids from org roles and from school roles there]},
# their schools and the classes they study and teach, each with its organization.
SCOPE_QUERY = """
SELECT
  (SELECT coalesce(json_object_agg(om.organization_id, (
      SELECT coalesce(json_agg(DISTINCT prr."permissionPermissionId"), '[]'::json)
      FROM permission_roles_role prr
      WHERE prr."roleRoleId" IN (
          SELECT rm."roleRoleId" FROM role_memberships_organization_membership rm
          WHERE rm."organizationMembershipUserId" = om.user_id
            AND rm."organizationMembershipOrganizationId" = om.organization_id
          UNION
          SELECT rs."roleRoleId" FROM role_school_memberships_school_membership rs
          JOIN school rsc ON rsc.school_id = rs."schoolMembershipSchoolId"
          WHERE rs."schoolMembershipUserId" = om.user_id
            AND rsc."organizationOrganizationId" = om.organization_id))), '{}'::json)
   FROM organization_membership om
   WHERE om.user_id = %(me)s AND om.status = 'active') AS orgs,
  (SELECT coalesce(json_agg(json_build_array(sm.school_id, sc."organizationOrganizationId")), '[]'::json)
   FROM school_membership sm JOIN school sc ON sc.school_id = sm.school_id
   WHERE sm.user_id = %(me)s AND sm.status = 'active') AS schools,
  (SELECT coalesce(json_agg(json_build_array(t."classClassId", c."organizationOrganizationId")), '[]'::json)
   FROM user_classes_teaching_class t JOIN class c ON c.class_id = t."classClassId"
   WHERE t."userUserId" = %(me)s) AS teaching,
  (SELECT coalesce(json_agg(json_build_array(t."classClassId", c."organizationOrganizationId")), '[]'::json)
   FROM user_classes_studying_class t JOIN class c ON c.class_id = t."classClassId"
   WHERE t."userUserId" = %(me)s) AS studying
"""


@dataclass(frozen=True)
class Scope:
    is_admin: bool
    user_id: str | None = None
    org_permissions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    schools: tuple[tuple[str, str], ...] = ()  # (school_id, organization_id)
    teaching: tuple[tuple[str, str], ...] = ()  # (class_id, organization_id)
    studying: tuple[tuple[str, str], ...] = ()

    @property
    def organization_ids(self) -> list[str]:
        return sorted(self.org_permissions)

    def orgs_with(self, permission: str) -> list[str]:
        return sorted(org for org, perms in self.org_permissions.items() if permission in perms)

    def has_permission(self, organization_id: str, permission: str) -> bool:
        return self.is_admin or permission in self.org_permissions.get(organization_id, frozenset())

    def _in_orgs(self, pairs: tuple[tuple[str, str], ...], permission: str) -> list[str]:
        orgs = set(self.orgs_with(permission))
        return sorted({item for item, org in pairs if org in orgs})

    # --- visibility predicates: None means "no restriction" (the API key) ---

    def organizations(self) -> Clause | None:
        if self.is_admin:
            return None
        return "o.organization_id = ANY(%s::uuid[])", [self.organization_ids]

    def schools_predicate(self, school_expr: str = "s.school_id", org_expr: str = 's."organizationOrganizationId"') -> Clause | None:
        if self.is_admin:
            return None
        return (
            f"{org_expr} = ANY(%s::uuid[]) OR {school_expr} = ANY(%s::uuid[])",
            [self.orgs_with(VIEW_ALL_SCHOOLS), self._in_orgs(self.schools, VIEW_MY_SCHOOLS)],
        )

    def classes(self) -> Clause | None:
        if self.is_admin:
            return None
        mine = sorted(
            set(self._in_orgs(self.teaching, VIEW_MY_CLASSES)) | set(self._in_orgs(self.studying, VIEW_MY_CLASSES))
        )
        return (
            'c."organizationOrganizationId" = ANY(%s::uuid[]) OR c.class_id = ANY(%s::uuid[]) '
            'OR EXISTS (SELECT 1 FROM school_classes_class v WHERE v."classClassId" = c.class_id '
            'AND v."schoolSchoolId" = ANY(%s::uuid[]))',
            [self.orgs_with(VIEW_ALL_CLASSES), mine, self._in_orgs(self.schools, VIEW_SCHOOL_CLASSES)],
        )

    def users(self, user_expr: str = "u.user_id") -> Clause | None:
        if self.is_admin:
            return None
        return (
            f"{user_expr} = %s::uuid "
            f'OR EXISTS (SELECT 1 FROM organization_membership v WHERE v."userUserId" = {user_expr} '
            'AND v."organizationOrganizationId" = ANY(%s::uuid[])) '
            f'OR EXISTS (SELECT 1 FROM school_membership v WHERE v."userUserId" = {user_expr} '
            'AND v."schoolSchoolId" = ANY(%s::uuid[])) '
            f'OR EXISTS (SELECT 1 FROM user_classes_studying_class v WHERE v."userUserId" = {user_expr} '
            'AND v."classClassId" = ANY(%s::uuid[])) '
            f'OR EXISTS (SELECT 1 FROM user_classes_teaching_class v WHERE v."userUserId" = {user_expr} '
            'AND v."classClassId" = ANY(%s::uuid[]))',
            [
                self.user_id,
                self.orgs_with(VIEW_ALL_USERS),
                self._in_orgs(self.schools, VIEW_SCHOOL_USERS),
                self._in_orgs(self.teaching, VIEW_CLASS_USERS),
                self._in_orgs(self.teaching, VIEW_CLASS_USERS),
            ],
        )

    def roles(self) -> Clause | None:
        if self.is_admin:
            return None
        return 'r.system_role OR r."organizationOrganizationId" = ANY(%s::uuid[])', [self.organization_ids]

    def organization_memberships(self) -> Clause | None:
        if self.is_admin:
            return None
        users_sql, users_params = self.users("om.user_id")  # type: ignore[misc]
        return f"om.organization_id = ANY(%s::uuid[]) AND ({users_sql})", [self.organization_ids, *users_params]

    def school_memberships(self) -> Clause | None:
        if self.is_admin:
            return None
        schools_sql, schools_params = self.schools_predicate(  # type: ignore[misc]
            "sm.school_id",
            '(SELECT v."organizationOrganizationId" FROM school v WHERE v.school_id = sm.school_id)',
        )
        users_sql, users_params = self.users("sm.user_id")  # type: ignore[misc]
        return f"({schools_sql}) AND ({users_sql})", [*schools_params, *users_params]


ADMIN_SCOPE = Scope(is_admin=True)


class ScopeCache:
    """Recently loaded scopes by user id.

    A landing page sends several requests for one user within a second; loading the
    scope once saves a query on each of the others. Entries live `ttl_seconds` and every
    mutation through this service clears them all, so a change made through the API is
    seen by the next request; a change made behind the service's back (a wipe in the
    database) is seen within `ttl_seconds`.
    """

    def __init__(self, ttl_seconds: float = 2.0, max_entries: int = 20_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Scope]] = {}

    def get(self, user_id: str, now: float) -> Scope | None:
        entry = self._entries.get(user_id)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def put(self, user_id: str, scope: Scope, now: float) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[user_id] = (now + self.ttl_seconds, scope)

    def clear(self) -> None:
        self._entries.clear()


def _pairs(raw: object) -> tuple[tuple[str, str], ...]:
    items = json.loads(raw) if isinstance(raw, str) else (raw or [])
    return tuple((str(a), str(b)) for a, b in items)


async def load_scope(db: RequestDb, user_id: str) -> Scope:
    row = await db.fetch_one(SCOPE_QUERY, {"me": user_id})
    assert row is not None
    orgs = row["orgs"] if isinstance(row["orgs"], dict) else json.loads(row["orgs"] or "{}")
    return Scope(
        is_admin=False,
        user_id=user_id,
        org_permissions={org: frozenset(perms or []) for org, perms in orgs.items()},
        schools=_pairs(row["schools"]),
        teaching=_pairs(row["teaching"]),
        studying=_pairs(row["studying"]),
    )
