"""Seeding a dataset through the service's GraphQL API, in the order the API accepts.

What is sent is planned in seeding/plan.py: calls cut by count (50), by key (an organization,
school or class once per call) and by body size (the service refuses bodies above 100 KB).
Calls within a stage do not depend on each other and are sent concurrently; a stage starts
once the stages it needs are done (the ids they created, the memberships they added), so
independent stages overlap; all share one limit of `concurrency` calls in flight. Two calls
writing one class's roster or one school's classes never run at once (the service reads the
whole list, then saves it). Once a call has failed, calls not yet sent are dropped.

Every write lands exactly once. The client never resends a mutation that may have reached
the service (target_api/client.py); when a call's answer is lost (`TransportError` with
`may_have_landed`), the seeder finds out whether it took effect before sending it again:

- creates: the created entities are looked up by their unique emails or names. All found:
  their ids are used. None found: the call is sent again (at most `max_sends` in all). Some
  found: impossible for an all-or-nothing mutation, so a `SeedingError`.
- adds: resent as is. The service refuses a repeated add whole with
  ERR_DUPLICATE_CHILD_ENTITY, so a resend refused with only that code means the first send
  landed.

When it cannot be known (the lookup itself fails, or every send was ambiguous), seeding
stops with a `SeedingError` that says the call may have landed: wipe and seed again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ult_pipeline.seeding import plan
from ult_pipeline.seeding.dataset import ORG_ADMIN, SCHOOL_ADMIN, STUDENT, TEACHER, Dataset
from ult_pipeline.seeding.plan import (
    ORG_ADMIN_ROLE,
    SCHOOL_ADMIN_ROLE,
    STUDENT_ROLE,
    TEACHER_ROLE,
    SeededIds,
    StagePlan,
)
from ult_pipeline.target_api.client import (
    GraphQLCallError,
    GraphQLClient,
    TransportError,
    element_codes,
    element_errors,
)

__all__ = ["ORG_ADMIN_ROLE", "SCHOOL_ADMIN_ROLE", "STUDENT_ROLE", "TEACHER_ROLE", "SeededIds", "SeedResult", "Seeder", "SeedingError", "StageTiming"]

DUPLICATE_CHILD = "ERR_DUPLICATE_CHILD_ENTITY"
# Sends of one call whose answers were all lost before seeding gives up.
MAX_SENDS = 3
# Calls in flight by default, chosen by bench/seeding.py on the shared 2-core machine (sandbox,
# large profile, seeding alone; two runs): 1 -> 85 / 56 s, 2 -> 51 / 43 s, 4 -> 31 / 26 s,
# 8 -> 32 / 27 s; standard: 4 and 8 alike. Past 4 the service (one process, with PostgreSQL
# on the same 2 cores) is the limit: more only queues in it and makes more, smaller calls.
DEFAULT_CONCURRENCY = 4


class SeedingError(RuntimeError):
    pass


# A create's lookup: the call's input -> the mutation's answer rebuilt from what the target
# holds (all created), or None (none created). Raises SeedingError for a partial result.
Lookup = Callable[[list[dict]], "dict | None"]


@dataclass(frozen=True)
class StageTiming:
    name: str
    calls: int
    seconds: float
    # The largest request body of the stage, in bytes (kept under plan.BODY_BUDGET).
    largest_body: int = 0

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class SeedResult:
    ids: SeededIds
    calls: int
    seconds: float
    stages: tuple[StageTiming, ...]

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def system_role_ids(client: GraphQLClient) -> dict[str, str]:
    # System roles get random ids when a database is first booted: always look them up.
    data = client.call("systemRoles")
    return {edge["node"]["name"]: edge["node"]["id"] for edge in data["rolesConnection"]["edges"]}


class Seeder:
    def __init__(
        self, client: GraphQLClient, concurrency: int = DEFAULT_CONCURRENCY, log: Callable[[str], None] | None = None,
        *, max_sends: int = MAX_SENDS, settle_s: float = 0.5,
    ):
        if concurrency < 1:
            raise ValueError("seeding concurrency must be at least 1")
        if max_sends < 1:
            raise ValueError("max_sends must be at least 1")
        self.client = client
        self.concurrency = concurrency
        self.max_sends = max_sends
        self.settle_s = settle_s
        self._log = log or (lambda _msg: None)
        self._stages: list[StageTiming] = []
        # At most `concurrency` calls in flight, over all the stages running at once.
        self._gate = threading.BoundedSemaphore(concurrency)
        # Set when a call failed: calls not sent yet are dropped (they never reach the service).
        self._abandon = threading.Event()

    def _run_graph(self, tasks: dict[str, tuple[tuple[str, ...], Callable[[], object]]]) -> None:
        """Run each task once the tasks it names have succeeded (names before it in ``tasks``);
        a task whose prerequisite failed does not run. Raises the failure that matters most."""
        futures: dict[str, Future] = {}

        def run(name: str) -> None:
            needs, task = tasks[name]
            for need in needs:
                futures[need].result()
            task()

        with ThreadPoolExecutor(len(tasks)) as pool:
            for name in tasks:
                futures[name] = pool.submit(run, name)
        _raise_first([f.exception() for f in futures.values()])

    def _send(self, operation: str, inputs: list[dict], lookup: Lookup | None) -> dict:
        with self._gate:
            if self._abandon.is_set():
                raise _Abandoned()
            try:
                return self._send_once(operation, inputs, lookup)
            except BaseException:
                self._abandon.set()
                raise

    def _run(self, stage: StagePlan, lookup: Lookup | None = None) -> list[dict]:
        """Send the stage's calls; returns each call's answer (`data[operation]`), in plan order.

        Up to ``concurrency`` calls are in flight; with ``serial_rounds`` a round's calls all
        answer before the next round's start. ``lookup`` is given for creates (see the module
        docstring); adds go without.
        """
        started = time.perf_counter()
        rounds = [list(r) for r in stage.rounds] if stage.serial_rounds else [stage.calls]
        results: list[dict] = []
        for calls in rounds:
            results += self._send_all(stage.operation, calls, lookup)
        seconds = time.perf_counter() - started
        largest = stage.largest_body
        self._stages.append(StageTiming(stage.name, len(stage.calls), seconds, largest))
        self._log(f"seeding: {stage.name}: {len(stage.calls)} calls in {seconds:.2f} s "
                  f"({len(stage.calls) / seconds if seconds else 0:.1f} calls/s, largest body {largest:,} bytes)")
        return results

    def _send_all(self, operation: str, calls: list[list[dict]], lookup: Lookup | None) -> list[dict]:
        if self.concurrency == 1 or len(calls) <= 1:
            return [self._send(operation, c, lookup) for c in calls]
        pool = ThreadPoolExecutor(min(self.concurrency, len(calls)))
        try:
            futures: list[Future] = [pool.submit(self._send, operation, c, lookup) for c in calls]
            wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.done() and not f.cancelled() and f.exception() is not None for f in futures):
                # Calls not started yet are never sent (nothing of theirs landed); those in
                # flight finish first, so that every failure is known.
                pool.shutdown(wait=True, cancel_futures=True)
                _raise_first([f.exception() for f in futures if not f.cancelled()])
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _send_once(self, operation: str, inputs: list[dict], lookup: Lookup | None) -> dict:
        """One call's effect, exactly once: `data[operation]` of the answer, or of the lookup
        (creates), or {} for an add found to have landed by a refused resend.

        Raises SeedingError when whether it landed cannot be known; TransportError (never
        landed) and GraphQLCallError (refused, nothing written) as the client raised them.
        """
        lost: TransportError | None = None
        for _ in range(self.max_sends):
            try:
                return self.client.call(operation, {"input": inputs})[operation]
            except GraphQLCallError as err:
                if lost is not None and lookup is None and _only_duplicate_children(err, len(inputs)):
                    self._log(f"seeding: {operation}: the resend was refused as a duplicate: the lost call had landed")
                    return {}
                if lost is not None:
                    raise SeedingError(
                        f"{operation}: an earlier send may have landed ({lost}), and the resend was refused: {err}. "
                        "Wipe the target and seed again."
                    ) from err
                raise
            except TransportError as err:
                if not err.may_have_landed:
                    if lost is None:
                        raise
                    raise SeedingError(
                        f"{operation}: an earlier send may have landed ({lost}), and the resend failed: {err}. "
                        "Wipe the target and seed again."
                    ) from err
                lost = err
            self._log(f"seeding: {operation}: answer lost ({lost}); checking whether the call took effect")
            # A call answered late (client timeout) may still be running in the service: give it
            # a moment to commit before looking (or the lookup could miss it and the resend double
            # it) and before resending an add (or the two could race on the roster's save).
            time.sleep(self.settle_s)
            if lookup is not None:
                found = self._look_up(operation, inputs, lookup, lost)
                if found is not None:
                    self._log(f"seeding: {operation}: the lost call had landed; using the ids found")
                    return found
        raise SeedingError(
            f"{operation}: the call may have landed, but no answer came back in {self.max_sends} sends "
            f"(last: {lost}); the target may hold part of the data. Wipe the target and seed again."
        )

    def _look_up(self, operation: str, inputs: list[dict], lookup: Lookup, lost: TransportError) -> dict | None:
        try:
            return lookup(inputs)
        except (TransportError, GraphQLCallError) as err:
            raise SeedingError(
                f"{operation}: the call may have landed ({lost}), and looking up its entities failed ({err}); "
                "it cannot be known whether the target holds them. Wipe the target and seed again."
            ) from err

    def seed(self, dataset: Dataset) -> SeedResult:
        started = time.perf_counter()
        calls_before = self.client.calls
        self._stages = []
        ids = SeededIds(roles=system_role_ids(self.client))
        missing = {STUDENT_ROLE, TEACHER_ROLE, ORG_ADMIN_ROLE, SCHOOL_ADMIN_ROLE} - ids.roles.keys()
        if missing:
            raise SeedingError(f"the service has no system role(s) {sorted(missing)}; is its system data in place?")

        self._gate = threading.BoundedSemaphore(self.concurrency)
        self._abandon.clear()
        # Stages with fewer calls than may be in flight are cut finer, so that they run at once.
        spread = self.concurrency
        self._create_users(dataset, ids)
        self._create_organizations(dataset, ids)
        # After the organizations, a stage starts as soon as what it needs is in place (API.md:
        # a user is an organization's member before joining its schools or classes), sharing
        # the `concurrency` calls in flight. Rosters: students before teachers, so that no two
        # stages write one class at once.
        self._run_graph({
            "schools": ((), lambda: self._create_schools(dataset, ids)),
            "classes": ((), lambda: self._create_classes(dataset, ids)),
            "org_teachers": ((), lambda: self._run(plan.add_users_to_organization(dataset, ids, TEACHER, spread))),
            "org_students": ((), lambda: self._run(plan.add_users_to_organization(dataset, ids, STUDENT, spread))),
            "org_org_admins": ((), lambda: self._run(plan.add_users_to_organization(dataset, ids, ORG_ADMIN, spread))),
            "org_school_admins": ((), lambda: self._run(
                plan.add_users_to_organization(dataset, ids, SCHOOL_ADMIN, spread))),
            "school_classes": (("schools", "classes"),
                               lambda: self._run(plan.add_classes_to_schools(dataset, ids, spread))),
            "school_teachers": (("schools", "org_teachers"),
                                lambda: self._run(plan.add_users_to_school(dataset, ids, TEACHER, spread))),
            "school_students": (("schools", "org_students"),
                                lambda: self._run(plan.add_users_to_school(dataset, ids, STUDENT, spread))),
            "school_school_admins": (("schools", "org_school_admins"),
                                     lambda: self._run(plan.add_users_to_school(dataset, ids, SCHOOL_ADMIN, spread))),
            "class_students": (("classes", "org_students"),
                               lambda: self._run(plan.add_students_to_classes(dataset, ids, spread))),
            "class_teachers": (("classes", "org_teachers", "class_students"),
                               lambda: self._run(plan.add_teachers_to_classes(dataset, ids, spread))),
        })
        return SeedResult(
            ids=ids, calls=self.client.calls - calls_before, seconds=time.perf_counter() - started,
            stages=tuple(self._stages),
        )

    def _create_users(self, dataset: Dataset, ids: SeededIds) -> None:
        by_email = {u.email: u.key for u in dataset.users}
        for result in self._run(plan.create_users(dataset, self.concurrency), self._users_by_email):
            for user in result["users"]:
                ids.users[by_email[user["contactInfo"]["email"].lower()]] = user["id"]
        _require_all("users", by_email.values(), ids.users)

    def _create_organizations(self, dataset: Dataset, ids: SeededIds) -> None:
        by_name = {o.name: o.key for o in dataset.organizations}
        for result in self._run(plan.create_organizations(dataset, ids, self.concurrency), self._organizations_by_name):
            for org in result["organizations"]:
                ids.organizations[by_name[org["name"]]] = org["id"]
        _require_all("organizations", by_name.values(), ids.organizations)

    def _create_schools(self, dataset: Dataset, ids: SeededIds) -> None:
        by_name = {s.name: s.key for s in dataset.schools}
        for result in self._run(plan.create_schools(dataset, ids, self.concurrency), self._schools_by_name):
            for school in result["schools"]:
                ids.schools[by_name[school["name"]]] = school["id"]
        _require_all("schools", by_name.values(), ids.schools)

    def _create_classes(self, dataset: Dataset, ids: SeededIds) -> None:
        by_name = {c.name: c.key for c in dataset.classes}
        for result in self._run(plan.create_classes(dataset, ids, self.concurrency), self._classes_by_name):
            for cls in result["classes"]:
                ids.classes[by_name[cls["name"]]] = cls["id"]
        _require_all("classes", by_name.values(), ids.classes)

    # --- lookups of created entities, for a create whose answer was lost ---

    def _users_by_email(self, inputs: list[dict]) -> dict | None:
        emails = [i["contactInfo"]["email"].lower() for i in inputs]
        data = self.client.call("usersByEmail", {"filter": {"OR": [
            {"email": {"operator": "eq", "value": e, "caseInsensitive": True}} for e in emails
        ]}})["usersConnection"]
        nodes = _nodes(data)
        found = _found("createUsers", "users", emails, nodes, data["totalCount"],
                       lambda n: (n["contactInfo"]["email"] or "").lower())
        return None if found is None else {"users": found}

    def _organizations_by_name(self, inputs: list[dict]) -> dict | None:
        names = [i["organizationName"] for i in inputs]
        data = self.client.call("organizationsByName", {"filter": {"OR": [
            {"name": {"operator": "eq", "value": n}} for n in names
        ]}})["organizationsConnection"]
        found = _found("createOrganizations", "organizations", names, _nodes(data), data["totalCount"],
                       lambda n: n["name"])
        return None if found is None else {"organizations": found}

    def _schools_by_name(self, inputs: list[dict]) -> dict | None:
        data = self.client.call("schoolsByName", {"filter": {"OR": [
            {"organizationId": {"operator": "eq", "value": i["organizationId"]},
             "name": {"operator": "eq", "value": i["name"]}} for i in inputs
        ]}})["schoolsConnection"]
        found = _found("createSchools", "schools", [(i["organizationId"], i["name"]) for i in inputs], _nodes(data),
                       data["totalCount"], lambda n: (n["organizationId"], n["name"]))
        return None if found is None else {"schools": found}

    def _classes_by_name(self, inputs: list[dict]) -> dict | None:
        # Filtered on (organizationId, name) pairs: a class name is unique within its organization.
        data = self.client.call("classesByName", {"filter": {"OR": [
            {"organizationId": {"operator": "eq", "value": i["organizationId"]},
             "name": {"operator": "eq", "value": i["name"]}} for i in inputs
        ]}})["classesConnection"]
        found = _found("createClasses", "classes", [i["name"] for i in inputs], _nodes(data), data["totalCount"],
                       lambda n: n["name"])
        return None if found is None else {"classes": found}

class _Abandoned(RuntimeError):
    """A call dropped unsent because another one failed."""

    def __init__(self) -> None:
        super().__init__("not sent: another call failed first")


def _raise_first(errors: list[BaseException | None]) -> None:
    """Raise the failure that matters most, if any: one that says the target may hold part of
    the data (SeedingError) before a plain refusal, and never a call dropped unsent."""
    found = [e for e in errors if e is not None]
    real = [e for e in found if not isinstance(e, _Abandoned)]
    if real or found:
        raise next((e for e in real if isinstance(e, SeedingError)), (real or found)[0])


def _nodes(connection: dict) -> list[dict]:
    return [edge["node"] for edge in connection.get("edges") or [] if edge and edge.get("node")]


def _found(operation: str, what: str, wanted: list, nodes: list[dict], total: int, key: Callable[[dict], object]) -> list[dict] | None:
    """The nodes for every wanted key, None when none exists; SeedingError for anything between
    (a list-input mutation is all-or-nothing) or when a key is held twice (duplicates exist)."""
    by_key: dict[object, list[dict]] = {}
    for node in nodes:
        by_key.setdefault(key(node), []).append(node)
    doubled = [k for k, v in by_key.items() if len(v) > 1]
    if doubled or total > len(nodes):
        raise SeedingError(
            f"{operation}: the target already holds {total} {what} for {len(wanted)} inputs "
            f"(duplicates, first: {doubled[:3]}); wipe the target and seed again"
        )
    present = [k for k in wanted if k in by_key]
    if not present:
        return None
    if len(present) < len(wanted):
        missing = [k for k in wanted if k not in by_key]
        raise SeedingError(
            f"{operation}: after a lost answer, {len(present)} of the call's {len(wanted)} {what} exist "
            f"(missing, first: {missing[:3]}); an all-or-nothing call cannot do that. Wipe the target and seed again."
        )
    return [by_key[k][0] for k in wanted]


def _only_duplicate_children(err: GraphQLCallError, elements: int) -> bool:
    """True when a refused add names only ERR_DUPLICATE_CHILD_ENTITY, for every element when
    the errors carry indexes: the call it repeats had landed whole."""
    codes = [c for e in err.errors for c in element_codes(e)]
    if not codes or any(c != DUPLICATE_CHILD for c in codes):
        return False
    indexes = {i["index"] for e in err.errors for i in element_errors(e) if i.get("index") is not None}
    return not indexes or indexes == set(range(elements))


def _require_all(what: str, keys, found: dict[str, str]) -> None:
    missing = [k for k in keys if k not in found]
    if missing:
        raise SeedingError(f"the service did not return ids for {len(missing)} {what} (first: {missing[:3]})")


def read_counts(client: GraphQLClient, dataset: Dataset, ids: SeededIds, *, whole_target: bool = False) -> dict[str, int]:
    """What the target holds, read back through the API with the API key; the keys of
    `Dataset.expected_counts()`.

    Counted through the API rather than in SQL: it needs only the API key the seeder already
    has, so it works for every target (a DSN is not always given, e.g. `--no-wipe`) and the
    check sees what the load test will see. Costs about 3 + 2 x organizations + schools +
    classes/50 calls (large: ~130).

    ``organization_admins`` and ``school_admins``: users holding the Organization Admin role
    (owners included) and the School Admin role on an organization membership, counted by the
    same documents as teachers and students, asked with the admin roles' ids.

    ``whole_target`` (after a wipe): users, organizations, schools, classes, teachers,
    students and both admins are the target's totals (unfiltered connections), so duplicates and strays from
    a call sent twice, or from earlier data, make the counts differ. Otherwise (seeded beside
    existing data, `--no-wipe`), they are summed over the dataset's organizations, and users
    are those whose email carries the dataset's namespace: a user created twice is counted
    twice.

    Links, in both cases per dataset organization, school and class: organization_memberships
    (members of each organization), school_memberships and school_classes (per school),
    class_students and class_teachers (roster sizes of each class, 50 classes per call).
    """
    counts = {k: 0 for k in ("organizations", "schools", "classes", "teachers", "students", "organization_admins",
                             "school_admins", "users", "organization_memberships", "school_memberships",
                             "school_classes", "class_students", "class_teachers")}
    roles = {"studentRoleId": ids.roles[STUDENT_ROLE], "teacherRoleId": ids.roles[TEACHER_ROLE]}
    # The documents count the users of two roles, named students and teachers: asked again with these.
    admin_roles = {"studentRoleId": ids.roles[ORG_ADMIN_ROLE], "teacherRoleId": ids.roles[SCHOOL_ADMIN_ROLE]}
    for org in dataset.organizations:
        data = client.call("seededCounts", {"organizationId": ids.organizations[org.key], **roles})
        for name in ("organizations", "schools", "classes", "teachers", "students"):
            counts[name] += data[name]["totalCount"]
        counts["organization_memberships"] += data["users"]["totalCount"]
        admins = client.call("seededCounts", {"organizationId": ids.organizations[org.key], **admin_roles})
        counts["organization_admins"] += admins["students"]["totalCount"]
        counts["school_admins"] += admins["teachers"]["totalCount"]
        cursor: str | None = None
        while True:
            page = client.call("classRosterCounts", {"organizationId": ids.organizations[org.key], "cursor": cursor})
            connection = page["classesConnection"]
            for node in _nodes(connection):
                counts["class_students"] += node["studentsConnection"]["totalCount"]
                counts["class_teachers"] += node["teachersConnection"]["totalCount"]
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                break
            cursor = info["endCursor"]
    for school in dataset.schools:
        data = client.call("schoolCounts", {"schoolId": ids.schools[school.key]})
        counts["school_memberships"] += data["members"]["totalCount"]
        counts["school_classes"] += data["classes"]["totalCount"]
    if whole_target:
        data = client.call("targetTotals", roles)
        for name in ("organizations", "schools", "classes", "teachers", "students", "users"):
            counts[name] = data[name]["totalCount"]
        admins = client.call("targetTotals", admin_roles)
        counts["organization_admins"] = admins["students"]["totalCount"]
        counts["school_admins"] = admins["teachers"]["totalCount"]
    else:
        data = client.call("usersWithEmailContaining", {"marker": dataset.email_marker})
        counts["users"] = data["usersConnection"]["totalCount"]
    return counts
