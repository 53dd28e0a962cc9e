"""User-service schemas filled directly by SQL, for the wipe's tests and benchmark.

Two shapes of schema:
- ``sandbox``: the sandbox's own DDL (`sandbox_service/ddl.sql`), which indexes every referencing
  column;
- ``real``: the shape of the real service 4.5.0 (its TypeORM migrations): the same DDL without the
  indexes the real service does not have (on `organization_membership."userUserId"`,
  `school_membership."userUserId"`, `role."organizationOrganizationId"`, ...), plus the tables the
  sandbox lacks (`academic_term`, `attendance`, `branding`, `branding_image`, the class and
  school join tables to programs, age ranges, grades and subjects) with their foreign keys.

:func:`fill` writes system rows (5 system roles, permissions and their links, system programs,
age ranges, grades, subjects, categories, subcategories and the links between them, 3
migrations) and a tenant dataset shaped like the seeding profiles (per 10,000 students: one
organization, 10 schools x 4 classes, 50 teachers), with tenant rows in every table.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql

SANDBOX, REAL = "sandbox", "real"

# Indexes of the sandbox DDL that the real service's schema does not have.
_NOT_IN_REAL = (
    "IDX_organization_primary_contact", "IDX_organization_membership_user", "IDX_organization_membership_organization",
    "IDX_school_organization", "IDX_school_membership_user", "IDX_school_membership_school", "IDX_class_organization",
    "IDX_role_organization", "IDX_program_organization", "IDX_age_range_organization", "IDX_grade_organization",
    "IDX_subject_organization", "IDX_category_organization",
)

# Tables of the real service the sandbox does not have (columns trimmed to the keys and a few more).
_REAL_ONLY = """
CREATE TABLE academic_term (
    id uuid PRIMARY KEY, name varchar NOT NULL, start_date timestamp NOT NULL, end_date timestamp NOT NULL,
    status varchar NOT NULL DEFAULT 'active', school_id uuid NOT NULL REFERENCES school (school_id)
);
ALTER TABLE class ADD COLUMN academic_term_id uuid REFERENCES academic_term (id);
CREATE TABLE attendance (
    session_id varchar NOT NULL, join_timestamp timestamp NOT NULL, leave_timestamp timestamp NOT NULL,
    room_id varchar NOT NULL, user_id varchar NOT NULL, PRIMARY KEY (session_id, join_timestamp, leave_timestamp)
);
CREATE INDEX ON attendance (room_id);
CREATE INDEX ON attendance (user_id);
CREATE TABLE branding (
    id uuid PRIMARY KEY, primary_color text, status varchar NOT NULL DEFAULT 'active',
    organization_id uuid UNIQUE REFERENCES organization (organization_id)
);
CREATE TABLE branding_image (
    id uuid PRIMARY KEY, tag varchar NOT NULL, url varchar NOT NULL, status varchar NOT NULL DEFAULT 'active',
    branding_id uuid REFERENCES branding (id) ON DELETE CASCADE
);
"""
_JOINS = (
    ("class_programs_program", "classClassId", "class", "class_id", "programId", "program"),
    ("class_age_ranges_age_range", "classClassId", "class", "class_id", "ageRangeId", "age_range"),
    ("class_grades_grade", "classClassId", "class", "class_id", "gradeId", "grade"),
    ("class_subjects_subject", "classClassId", "class", "class_id", "subjectId", "subject"),
    ("school_programs_program", "schoolSchoolId", "school", "school_id", "programId", "program"),
    ("program_age_ranges_age_range", "programId", "program", "id", "ageRangeId", "age_range"),
    ("program_grades_grade", "programId", "program", "id", "gradeId", "grade"),
    ("program_subjects_subject", "programId", "program", "id", "subjectId", "subject"),
    ("subject_categories_category", "subjectId", "subject", "id", "categoryId", "category"),
    ("category_subcategories_subcategory", "categoryId", "category", "id", "subcategoryId", "subcategory"),
)


def _join_ddl() -> str:
    out = []
    for table, a, a_table, a_key, b, b_table in _JOINS:
        out.append(
            f'CREATE TABLE IF NOT EXISTS {table} ("{a}" uuid NOT NULL REFERENCES {a_table} ({a_key}) ON DELETE CASCADE, '
            f'"{b}" uuid NOT NULL REFERENCES {b_table} (id) ON DELETE CASCADE, PRIMARY KEY ("{a}", "{b}"));\n'
            f'CREATE INDEX IF NOT EXISTS "IDX_{table}_b" ON {table} ("{b}");\n')
    return "".join(out)


def create_schema(conn: psycopg.Connection, schema: str, shape: str = SANDBOX) -> None:
    """(Re)create ``schema`` with the user-service's tables of ``shape``; commits."""
    ddl = (resources.files("ult_pipeline.sandbox_service") / "ddl.sql").read_text(encoding="utf-8")
    ident = sql.Identifier(schema)
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    conn.execute(sql.SQL("SET search_path TO {}").format(ident))
    conn.execute(ddl)
    if shape == REAL:
        # The join tables between classes, schools, programs, ... (the sandbox has none of them).
        conn.execute(_join_ddl())
        for index in _NOT_IN_REAL:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
        conn.execute(_REAL_ONLY)
    conn.execute("RESET search_path")
    conn.commit()


def _u(prefix: str, expr: str) -> str:
    return f"md5('{prefix}' || ({expr}))::uuid"


def fill(conn: psycopg.Connection, schema: str, students: int) -> dict[str, int]:
    """System rows and a tenant dataset of ``students`` students; commits. Returns the tenant row
    count per table (tables the schema lacks are left out)."""
    orgs = max(1, students // 10_000)
    teachers = 50 * orgs
    ident = sql.Identifier(schema)
    conn.execute(sql.SQL("SET search_path TO {}").format(ident))
    tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
    def org(expr: str) -> str:  # an organization's id from an SQL expression of its number
        return _u("o", expr)

    statements = [
        # -- system rows
        "INSERT INTO migrations (\"timestamp\", name) SELECT g, 'Migration' || g FROM generate_series(1, 3) g",
        "INSERT INTO permission (permission_id, permission_name) SELECT 'perm_' || g, 'Permission ' || g "
        "FROM generate_series(1, 60) g",
        "INSERT INTO role (role_id, role_name, system_role) SELECT " + _u("sr", "g") + ", name, true FROM "
        "unnest(ARRAY['Student','Parent','Teacher','School Admin','Organization Admin']) WITH ORDINALITY AS t(name, g)",
        "INSERT INTO permission_roles_role SELECT 'perm_' || p, " + _u("sr", "r") +
        " FROM generate_series(1, 60) p, generate_series(1, 5) r WHERE (p + r) %% 2 = 0",
    ]
    for table in ("program", "subject", "category", "subcategory", "grade"):
        statements.append(f"INSERT INTO {table} (id, name, system) SELECT {_u('s' + table, 'g')}, 'System ' || g, true "
                          "FROM generate_series(1, 4) g")
    statements.append("INSERT INTO age_range (id, name, low_value, high_value, low_value_unit, high_value_unit, system) "
                      f"SELECT {_u('sage_range', 'g')}, 'System ' || g, g, g + 1, 'year', 'year', true "
                      "FROM generate_series(1, 4) g")
    for table, a, a_table, _key, b, b_table in _JOINS:
        if a_table not in ("class", "school") and table in tables:  # system-to-system links
            statements.append(f'INSERT INTO {table} ("{a}", "{b}") SELECT {_u("s" + a_table, "g")}, '
                              f'{_u("s" + b_table, "g")} FROM generate_series(1, 4) g')
    # -- tenant rows: per organization o (0-based), schools s, classes c, teachers t, students i
    statements += [
        f"INSERT INTO \"user\" (user_id, given_name, family_name, email) SELECT {_u('owner', 'o')}, 'Owner', 'O' || o, "
        "'owner' || o || '@example.com' FROM generate_series(0, %(orgs)s - 1) o",
        f"INSERT INTO organization (organization_id, organization_name, \"primaryContactUserId\") SELECT "
        f"{org('o')}, 'Org ' || o, {_u('owner', 'o')} FROM generate_series(0, %(orgs)s - 1) o",
        f"UPDATE \"user\" SET \"myOrganizationOrganizationId\" = {org('substring(given_name || family_name from 7)')} "
        "WHERE given_name = 'Owner'",
        f"INSERT INTO organization_ownership (user_id, organization_id) SELECT {_u('owner', 'o')}, {org('o')} "
        "FROM generate_series(0, %(orgs)s - 1) o",
        # users: teachers then students
        f"INSERT INTO \"user\" (user_id, given_name, family_name, email, username) SELECT {_u('t', 'g')}, 'Teacher', 'T' || g, "
        "'t' || g || '@example.com', 't' || g FROM generate_series(0, %(teachers)s - 1) g",
        f"INSERT INTO \"user\" (user_id, given_name, family_name, email, username) SELECT {_u('st', 'g')}, 'Student', 'S' || g, "
        "'s' || g || '@example.com', 's' || g FROM generate_series(0, %(students)s - 1) g",
        f"INSERT INTO school (school_id, school_name, \"organizationOrganizationId\") SELECT {_u('sc', 'g')}, "
        f"'School ' || g, {org('g / 10')} FROM generate_series(0, %(orgs)s * 10 - 1) g",
        f"INSERT INTO class (class_id, class_name, \"organizationOrganizationId\") SELECT {_u('cl', 'g')}, "
        f"'Class ' || g, {org('g / 40')} FROM generate_series(0, %(orgs)s * 40 - 1) g",
        f"INSERT INTO school_classes_class SELECT {_u('sc', 'g / 4')}, {_u('cl', 'g')} "
        "FROM generate_series(0, %(orgs)s * 40 - 1) g",
        # memberships: owners, teachers (g / 50 = org), students (g %% orgs = org)
        f"INSERT INTO organization_membership (user_id, organization_id, \"userUserId\", \"organizationOrganizationId\") "
        f"SELECT {_u('owner', 'o')}, {org('o')}, {_u('owner', 'o')}, {org('o')} "
        "FROM generate_series(0, %(orgs)s - 1) o",
        f"INSERT INTO organization_membership (user_id, organization_id, \"userUserId\", \"organizationOrganizationId\") "
        f"SELECT {_u('t', 'g')}, {org('g / 50')}, {_u('t', 'g')}, {org('g / 50')} "
        "FROM generate_series(0, %(teachers)s - 1) g",
        f"INSERT INTO organization_membership (user_id, organization_id, \"userUserId\", \"organizationOrganizationId\") "
        f"SELECT {_u('st', 'g')}, {org('g %% %(orgs)s')}, {_u('st', 'g')}, {org('g %% %(orgs)s')} "
        "FROM generate_series(0, %(students)s - 1) g",
        f"INSERT INTO role_memberships_organization_membership SELECT {_u('sr', '5')}, user_id, organization_id "
        f"FROM organization_membership WHERE \"userUserId\" IN (SELECT {_u('owner', 'o')} FROM generate_series(0, %(orgs)s - 1) o)",
        f"INSERT INTO role_memberships_organization_membership SELECT {_u('sr', '3')}, m.user_id, m.organization_id "
        "FROM organization_membership m JOIN \"user\" u ON u.user_id = m.\"userUserId\" WHERE u.given_name = 'Teacher'",
        f"INSERT INTO role_memberships_organization_membership SELECT {_u('sr', '1')}, m.user_id, m.organization_id "
        "FROM organization_membership m JOIN \"user\" u ON u.user_id = m.\"userUserId\" WHERE u.given_name = 'Student'",
        # school memberships: teacher g -> school (g / 50) * 10 + g %% 10; student g -> school (g %% orgs) * 10 + (g / orgs) %% 10
        f"INSERT INTO school_membership (user_id, school_id, \"userUserId\", \"schoolSchoolId\") SELECT {_u('t', 'g')}, "
        f"{_u('sc', '(g / 50) * 10 + g %% 10')}, {_u('t', 'g')}, {_u('sc', '(g / 50) * 10 + g %% 10')} "
        "FROM generate_series(0, %(teachers)s - 1) g",
        f"INSERT INTO school_membership (user_id, school_id, \"userUserId\", \"schoolSchoolId\") SELECT {_u('st', 'g')}, "
        f"{_u('sc', '(g %% %(orgs)s) * 10 + (g / %(orgs)s) %% 10')}, {_u('st', 'g')}, "
        f"{_u('sc', '(g %% %(orgs)s) * 10 + (g / %(orgs)s) %% 10')} FROM generate_series(0, %(students)s - 1) g",
        f"INSERT INTO role_school_memberships_school_membership SELECT {_u('sr', '1')}, user_id, school_id "
        "FROM school_membership",
        # rosters: class = school * 4 + k
        f"INSERT INTO user_classes_teaching_class SELECT {_u('t', 'g')}, {_u('cl', '((g / 50) * 10 + g %% 10) * 4 + g %% 4')} "
        "FROM generate_series(0, %(teachers)s - 1) g",
        f"INSERT INTO user_classes_studying_class SELECT {_u('st', 'g')}, "
        f"{_u('cl', '((g %% %(orgs)s) * 10 + (g / %(orgs)s) %% 10) * 4 + (g / %(orgs)s / 10) %% 4')} "
        "FROM generate_series(0, %(students)s - 1) g",
        # tenant roles, programs, ... of each organization, linked to system and tenant rows
        f"INSERT INTO role (role_id, role_name, system_role, \"organizationOrganizationId\") SELECT {_u('tr', 'o')}, "
        f"'Custom', false, {org('o')} FROM generate_series(0, %(orgs)s - 1) o",
        f"INSERT INTO permission_roles_role SELECT 'perm_' || p, {_u('tr', 'o')} "
        "FROM generate_series(1, 10) p, generate_series(0, %(orgs)s - 1) o",
    ]
    for table in ("program", "subject", "category", "subcategory", "grade"):
        statements.append(f"INSERT INTO {table} (id, name, system, organization_id) SELECT {_u('t' + table, 'o')}, "
                          f"'Own ' || o, false, {org('o')} FROM generate_series(0, %(orgs)s - 1) o")
    statements.append("INSERT INTO age_range (id, name, low_value, high_value, low_value_unit, high_value_unit, system, "
                      f"organization_id) SELECT {_u('tage_range', 'o')}, 'Own ' || o, 1, 2, 'month', 'month', false, "
                      f"{org('o')} FROM generate_series(0, %(orgs)s - 1) o")
    for table, a, a_table, _key, b, b_table in _JOINS:
        if table not in tables:
            continue
        if a_table in ("class", "school"):  # tenant class/school to a system and a tenant row
            n = "%(orgs)s * 40" if a_table == "class" else "%(orgs)s * 10"
            per = 40 if a_table == "class" else 10
            prefix = "cl" if a_table == "class" else "sc"
            statements.append(f'INSERT INTO {table} ("{a}", "{b}") SELECT {_u(prefix, "g")}, {_u("s" + b_table, "1")} '
                              f"FROM generate_series(0, {n} - 1) g")
            statements.append(f'INSERT INTO {table} ("{a}", "{b}") SELECT {_u(prefix, "g")}, {_u("t" + b_table, f"g / {per}")} '
                              f"FROM generate_series(0, {n} - 1) g")
        else:  # tenant to tenant, tenant to system
            statements.append(f'INSERT INTO {table} ("{a}", "{b}") SELECT {_u("t" + a_table, "o")}, {_u("t" + b_table, "o")} '
                              "FROM generate_series(0, %(orgs)s - 1) o")
            statements.append(f'INSERT INTO {table} ("{a}", "{b}") SELECT {_u("t" + a_table, "o")}, {_u("s" + b_table, "1")} '
                              "FROM generate_series(0, %(orgs)s - 1) o")
    if "academic_term" in tables:
        statements += [
            f"INSERT INTO academic_term (id, name, start_date, end_date, school_id) SELECT {_u('at', 'g')}, 'Term', "
            f"now(), now() + interval '90 days', {_u('sc', 'g')} FROM generate_series(0, %(orgs)s * 10 - 1) g",
            f"UPDATE class SET academic_term_id = {_u('at', 'substring(class_name from 7)::int / 4')}",
            "INSERT INTO attendance SELECT 'session' || g, now(), now(), 'room' || (g %% 40), "
            f"{_u('st', 'g')}::text FROM generate_series(0, %(students)s / 10) g",
            f"INSERT INTO branding (id, primary_color, organization_id) SELECT {_u('br', 'o')}, '#123456', "
            f"{org('o')} FROM generate_series(0, %(orgs)s - 1) o",
            f"INSERT INTO branding_image (id, tag, url, branding_id) SELECT {_u('bi', 'o')}, 'ICON', 'https://x/' || o, "
            f"{_u('br', 'o')} FROM generate_series(0, %(orgs)s - 1) o",
        ]
    params = {"orgs": orgs, "teachers": teachers, "students": students}
    for statement in statements:
        conn.execute(statement, params)
    conn.execute("RESET search_path")
    conn.commit()
    return tenant_counts(conn, schema)


def tenant_counts(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    """Tenant rows per table (system rows and `permission`/`migrations` left out)."""
    counts = {}
    for table, where in _tenant_predicates(conn, schema).items():
        counts[table] = conn.execute(sql.SQL("SELECT count(*) FROM {}.{} WHERE " + where).format(
            sql.Identifier(schema), sql.Identifier(table))).fetchone()[0]
    return counts


def system_rows(conn: psycopg.Connection, schema: str) -> dict[str, list[tuple]]:
    """Every system row (and `migrations`, `permission`), sorted, per table: to compare before and after."""
    out = {}
    for table, where in _tenant_predicates(conn, schema, system=True).items():
        rows = conn.execute(sql.SQL("SELECT * FROM {}.{} WHERE " + where).format(
            sql.Identifier(schema), sql.Identifier(table))).fetchall()
        out[table] = sorted(rows, key=repr)
    return out


_MIXED = {"role": "system_role", **{t: "system" for t in ("program", "subject", "category", "subcategory", "grade", "age_range")}}
_MIXED_JOINS = {  # join table -> (its column, the mixed table it points to, that table's key)
    "permission_roles_role": ('"roleRoleId"', "role", "role_id"),
    **{table: (f'"{a}"', a_table, "id") for table, a, a_table, _k, _b, _bt in _JOINS if a_table not in ("class", "school")},
}


def _tenant_predicates(conn: psycopg.Connection, schema: str, system: bool = False) -> dict[str, str]:
    tables = sorted(r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)))
    out = {}
    for table in tables:
        if table in ("migrations", "permission"):
            if system:
                out[table] = "true"
        elif table in _MIXED:
            out[table] = f"{'' if system else 'NOT '}{_MIXED[table]}"
        elif table in _MIXED_JOINS:
            column, target, key = _MIXED_JOINS[table]
            flag = _MIXED[target]
            q = f'"{schema}".{target}'
            out[table] = f"{column} IN (SELECT {key} FROM {q} WHERE {'' if system else 'NOT '}{flag})"
        elif not system:
            out[table] = "true"
    return out
