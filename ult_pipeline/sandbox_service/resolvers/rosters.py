"""Class rosters as the real service 4.5.0 (MUTATIONS.md, "Rosters"): add/remove students and
teachers (list inputs), move students/teachers to another class (one object).

Roster writes follow the service's `--roster-writes` knob (knobs.py):
- `locked` (default): the call checks and writes under a row lock on its classes, in one
  transaction; concurrent writes to one class take turns and nothing acknowledged is lost.
- `unlocked`: as 4.5.0, the call reads each class's whole roster, then saves the new list
  (delete the rows not in it, insert the rows of it that are missing) with no lock: parallel
  writes to one class overwrite one another, and a duplicate key on insert (or a deadlock
  between racing writers) is ERROR_SAVING.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import psycopg
from ariadne import MutationType
from graphql import GraphQLError

from ..context import context_of
from ..errors import (
    DUPLICATE_ATTRIBUTE_VALUES,
    NON_EXISTENT_CHILD_ENTITY,
    SOURCE_AND_DESTINATION_DONT_MATCH,
    TOO_MANY_RELATIONS,
    InputProblem,
    check_input_length,
    missing,
    missing_child,
    raise_if_any,
    saving_failed,
)
from ..filters import as_uuid
from ..knobs import ROSTER_RACE_HOLD_S, ROSTER_WRITES_UNLOCKED, hold
from .class_writes import class_rows, reporting_order, require_uuids
from .common import existing_ids, require_permission
from .membership_input import (
    already_linked_problems,
    duplicate_problems,
    inner_length_problems,
    missing_parent_problems,
    non_member_problems,
    organizations_of,
    unique_canonical,
)

mutation = MutationType()


@dataclass(frozen=True)
class Roster:
    users_key: str
    table: str
    add_permission: str
    remove_permission: str
    move_permission: str


STUDENTS = Roster(
    "studentIds", "user_classes_studying_class", "add_students_to_class_20225",
    "delete_student_from_class_roster_20445", "move_students_to_another_class_20335",
)
TEACHERS = Roster(
    "teacherIds", "user_classes_teaching_class", "add_teachers_to_class_20226",
    "delete_teacher_from_class_20446", "move_teachers_to_another_class_20340",
)


async def _lock_classes(conn: psycopg.AsyncConnection, class_ids: list[str]) -> None:
    """Row locks on the classes, in id order (no deadlock between two calls); NO KEY UPDATE so
    that other tables' foreign-key checks on the class are not blocked."""
    await conn.execute(
        "SELECT 1 FROM class WHERE class_id = ANY(%s::uuid[]) ORDER BY class_id FOR NO KEY UPDATE",
        [sorted(set(class_ids))],
    )


async def read_rosters(conn: psycopg.AsyncConnection, table: str, class_ids: list[str]) -> dict[str, set[str]]:
    cur = await conn.execute(
        f'SELECT "classClassId"::text AS c, "userUserId"::text AS u FROM {table} WHERE "classClassId" = ANY(%s::uuid[])',
        [sorted(set(class_ids))],
    )
    rosters: dict[str, set[str]] = {c: set() for c in class_ids}
    for row in await cur.fetchall():
        rosters[row["c"]].add(row["u"])
    return rosters


async def _insert_pairs(conn: psycopg.AsyncConnection, table: str, pairs: list[tuple[str, str]], *,
                        ignore_existing: bool) -> None:
    if not pairs:
        return
    conflict = " ON CONFLICT DO NOTHING" if ignore_existing else ""
    await conn.execute(
        f'INSERT INTO {table} ("userUserId", "classClassId") '
        f"SELECT * FROM unnest(%s::uuid[], %s::uuid[]){conflict}",
        [[u for u, _ in pairs], [c for _, c in pairs]],
    )


async def _delete_pairs(conn: psycopg.AsyncConnection, table: str, pairs: list[tuple[str, str]]) -> None:
    if not pairs:
        return
    await conn.execute(
        f'DELETE FROM {table} WHERE ("userUserId", "classClassId") IN (SELECT * FROM unnest(%s::uuid[], %s::uuid[]))',
        [[u for u, _ in pairs], [c for _, c in pairs]],
    )


async def _save_roster_lists(conn: psycopg.AsyncConnection, table: str, wanted: dict[str, set[str]]) -> None:
    """4.5.0's save of each class's new list (TypeORM's many-to-many save): in one transaction,
    load the rows now stored, delete those not in the list, insert those of the list not found.
    No lock: a concurrent writer's rows vanish (lost writes) or collide (ERROR_SAVING)."""
    try:
        async with conn.transaction():
            stored = await read_rosters(conn, table, list(wanted))
            removed = [(u, c) for c, users in stored.items() for u in sorted(users - wanted[c])]
            added = [(u, c) for c, users in wanted.items() for u in sorted(users - stored[c])]
            await _delete_pairs(conn, table, removed)
            await _insert_pairs(conn, table, added, ignore_existing=False)
    except psycopg.Error as error:
        # A duplicate key (a racing writer inserted the row first), or a deadlock between racing
        # writers: the real service reports any failed save the same way.
        raise saving_failed(str(error).splitlines()[0]) from None


def _without_users(items: list[dict], key: str, unknown: set[str]) -> list[dict]:
    """The items with their unknown users left out (already reported as ERR_NON_EXISTENT_ENTITY)."""
    return [{**item, key: [u for u in item.get(key) or [] if as_uuid(u) not in unknown]} for item in items]


async def _unknown_users(info: Any, items: list[dict], key: str) -> tuple[list[InputProblem], set[str]]:
    wanted = {as_uuid(u) for item in items for u in item.get(key) or []}
    found = await existing_ids(info, '"user"', "user_id", [u for u in wanted if u])
    problems = [
        missing("User", user, index, key)
        for index, item in enumerate(items)
        for user in item.get(key) or []
        if as_uuid(user) not in found
    ]
    return problems, {u for u in wanted if u and u not in found}


def _not_on_roster(items: list[dict], key: str, classes: list[str | None], active: set[str],
                   rosters: dict[str, set[str]]) -> list[InputProblem]:
    """ERR_NON_EXISTENT_CHILD_ENTITY for each user not on the roster of an (active) class."""
    return [
        missing_child("User", user, "Class", item.get("classId"), index)
        for index, (item, class_id) in enumerate(zip(items, classes, strict=True))
        if class_id in active
        for user in item.get(key) or []
        if as_uuid(user) not in rosters.get(class_id, set())
    ]


async def write_rosters(info: Any, input: list[dict], roster: Roster, *, adding: bool) -> dict:
    """add/remove Students/Teachers To/From Classes: one element per class, all or nothing."""
    key = roster.users_key
    check_input_length(input)
    classes: list[str | None] = list(require_uuids(item["classId"] for item in input))
    require_uuids(u for item in input for u in item.get(key) or [])
    raise_if_any(inner_length_problems(input, (key,)))
    ctx = context_of(info)
    conn = await ctx.db.connection()
    unlocked = ctx.roster_writes == ROSTER_WRITES_UNLOCKED
    async with (contextlib.nullcontext() if unlocked else conn.transaction()):
        if not unlocked:
            await _lock_classes(conn, [c for c in classes if c])
        # Load rows: the classes (active only) and their whole rosters.
        problems, _ = await missing_parent_problems(info, input, "classId", "class", "class_id", "Class")
        orgs = await organizations_of(info, "class", "class_id", classes)
        rosters = await read_rosters(conn, roster.table, [c for c in classes if c])
        permission = roster.add_permission if adding else roster.remove_permission
        await require_permission(info, permission, sorted({o for o in orgs if o}))
        problems += duplicate_problems(input, "classId", "Class")
        user_problems, unknown = await _unknown_users(info, input, key)
        problems += user_problems
        known = _without_users(input, key, unknown)
        if adding:
            # Any membership in the class's organization will do, inactive included (MUTATIONS.md).
            problems += await non_member_problems(info, known, key, orgs, "Class", "classId", any_status=True)
            problems += await already_linked_problems(
                info, known, key, classes, table=roster.table, child_column="userUserId",
                parent_column="classClassId", entity="User", parent_entity="Class", parent_key="classId",
            )
        else:
            active = await existing_ids(info, "class", "class_id", [c for c in classes if c])
            problems += _not_on_roster(known, key, classes, active, rosters)
        raise_if_any(reporting_order(problems))
        changes = {
            class_id: set(unique_canonical(item[key]))
            for item, class_id in zip(input, classes, strict=True) if class_id
        }
        if unlocked:
            wanted = {c: (rosters[c] | users if adding else rosters[c] - users) for c, users in changes.items()}
        else:
            pairs = [(u, c) for c, users in changes.items() for u in sorted(users)]
            if adding:
                await _insert_pairs(conn, roster.table, pairs, ignore_existing=True)
            else:
                await _delete_pairs(conn, roster.table, pairs)
    if unlocked:
        # The window between reading the roster and saving it, held open so the race shows on a fast machine.
        await hold(ROSTER_RACE_HOLD_S)
        await _save_roster_lists(conn, roster.table, wanted)
    return {"classes": await class_rows(info, [c for c in classes if c])}


@mutation.field("addStudentsToClasses")
async def resolve_add_students(_: Any, info: Any, input: list[dict]) -> dict:
    return await write_rosters(info, input, STUDENTS, adding=True)


@mutation.field("addTeachersToClasses")
async def resolve_add_teachers(_: Any, info: Any, input: list[dict]) -> dict:
    return await write_rosters(info, input, TEACHERS, adding=True)


@mutation.field("removeStudentsFromClasses")
async def resolve_remove_students(_: Any, info: Any, input: list[dict]) -> dict:
    return await write_rosters(info, input, STUDENTS, adding=False)


@mutation.field("removeTeachersFromClasses")
async def resolve_remove_teachers(_: Any, info: Any, input: list[dict]) -> dict:
    return await write_rosters(info, input, TEACHERS, adding=False)


# --- moveStudentsToClass / moveTeachersToClass ---


def _move_problem(code: str, message: str, attribute: str) -> InputProblem:
    return InputProblem(code, message, "Class", attribute, None)


async def move_users(info: Any, input: dict | None, roster: Roster, *, api_key_allowed: bool) -> dict:
    """One object, no length limit. Both classes in the same organization and the same single
    school; every user on the `from` roster. Class status is not checked (a deleted class takes
    students)."""
    if input is None:
        raise GraphQLError("input is required")
    from_id, to_id = require_uuids([input["fromClassId"], input["toClassId"]])
    users = require_uuids(input.get("userIds") or [])
    ctx = context_of(info)
    conn = await ctx.db.connection()
    unlocked = ctx.roster_writes == ROSTER_WRITES_UNLOCKED
    async with conn.transaction():
        if not unlocked:
            await _lock_classes(conn, [from_id, to_id])
        cur = await conn.execute(
            'SELECT c.class_id::text AS id, c."organizationOrganizationId"::text AS org, '
            'coalesce(array_agg(s."schoolSchoolId"::text ORDER BY s."schoolSchoolId") '
            'FILTER (WHERE s."schoolSchoolId" IS NOT NULL), %s::text[]) AS schools '
            'FROM class c LEFT JOIN school_classes_class s ON s."classClassId" = c.class_id '
            "WHERE c.class_id = ANY(%s::uuid[]) GROUP BY c.class_id",
            [[], [from_id, to_id]],
        )
        found = {row["id"]: row for row in await cur.fetchall()}
        absent = [
            missing("Class", input[k], None, k)
            for k, class_id in (("fromClassId", from_id), ("toClassId", to_id))
            if class_id not in found
        ]
        raise_if_any(absent)
        source, destination = found[from_id], found[to_id]
        await require_permission(
            info, roster.move_permission, sorted({source["org"], destination["org"]} - {None}),
            api_key_allowed=api_key_allowed,
        )
        problems: list[InputProblem] = []
        if len(set(users)) != len(users):
            problems.append(_move_problem(DUPLICATE_ATTRIBUTE_VALUES, "userIds contain an id more than once.", "userIds"))
        if source["org"] != destination["org"]:
            problems.append(_move_problem(
                SOURCE_AND_DESTINATION_DONT_MATCH,
                f"Class {from_id} and Class {to_id} are not in the same Organization.", "organization"))
        for row in (source, destination):
            if len(row["schools"]) > 1:
                problems.append(_move_problem(
                    TOO_MANY_RELATIONS, f"Class {row['id']} belongs to more than one School.", "schools"))
        if all(len(row["schools"]) <= 1 for row in (source, destination)) and source["schools"] != destination["schools"]:
            problems.append(_move_problem(
                SOURCE_AND_DESTINATION_DONT_MATCH,
                f"Class {from_id} and Class {to_id} are not in the same School.", "schools"))
        on_roster = (await read_rosters(conn, roster.table, [from_id]))[from_id]
        problems += [
            InputProblem(
                NON_EXISTENT_CHILD_ENTITY,
                f"User {user} doesn't exist for Class {from_id}.", "User", "userIds", None)
            for user in dict.fromkeys(users) if user not in on_roster
        ]
        raise_if_any(problems)
        moved = sorted(set(users))
        await _delete_pairs(conn, roster.table, [(u, from_id) for u in moved])
        await _insert_pairs(conn, roster.table, [(u, to_id) for u in moved], ignore_existing=True)
    rows = await class_rows(info, [from_id, to_id])
    by_id = {row["id"]: row for row in rows}
    return {"fromClass": by_id[from_id], "toClass": by_id[to_id]}


@mutation.field("moveStudentsToClass")
async def resolve_move_students(_: Any, info: Any, input: dict | None = None) -> dict:
    return await move_users(info, input, STUDENTS, api_key_allowed=True)


@mutation.field("moveTeachersToClass")
async def resolve_move_teachers(_: Any, info: Any, input: dict | None = None) -> dict:
    # The super-admin role (the API key) lacks move_teachers_to_another_class_20340 (MUTATIONS.md).
    return await move_users(info, input, TEACHERS, api_key_allowed=False)


BINDABLES = [mutation]
