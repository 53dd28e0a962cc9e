"""Deterministic generation of a dataset from a profile and a seed (no ids, no I/O).

Same profile + seed + namespace gives the same names, emails, rosters and memberships;
`content_hash` proves it across runs (ids are assigned by the service and excluded).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field

from ult_pipeline.seeding.profiles import DatasetProfile

GIVEN_NAMES = (
    "Ava Ben Chloe Daniel Ella Finn Grace Harry Isla Jack Kai Lily Mason Nora Oscar Poppy Quinn Ruby Sam Theo "
    "Uma Victor Willow Xavier Yara Zane Amir Bea Cai Dara Eli Faye Gus Hana Ivo Juno Kofi Lena Milo Nia"
).split()
FAMILY_NAMES = (
    "Adams Brown Chen Davies Evans Fischer Garcia Hughes Ito Jones Khan Lopez Murphy Nguyen Okafor Patel "
    "Quinn Rossi Smith Taylor Ueda Vargas Walker Xu Young Zhang Alvarez Bauer Costa Dubois"
).split()
GENDERS = ("female", "male")

OWNER, TEACHER, STUDENT = "owner", "teacher", "student"
# Administrators (roles as written in the identities file): an Organization Admin of one
# organization; a School Admin (that role on its organization membership) of one school.
ORG_ADMIN, SCHOOL_ADMIN = "org_admin", "school_admin"
EMAIL_DOMAIN = "ult-loadtest.example"


@dataclass(frozen=True)
class UserSpec:
    key: str
    role: str
    organization: str
    given_name: str
    family_name: str
    email: str
    gender: str
    date_of_birth: str


@dataclass(frozen=True)
class OrganizationSpec:
    key: str
    name: str
    owner: str


@dataclass(frozen=True)
class SchoolSpec:
    key: str
    organization: str
    name: str
    short_code: str


@dataclass(frozen=True)
class ClassSpec:
    key: str
    organization: str
    school: str
    name: str


@dataclass(frozen=True)
class Dataset:
    profile: DatasetProfile
    seed: int
    namespace: str
    users: tuple[UserSpec, ...]
    organizations: tuple[OrganizationSpec, ...]
    schools: tuple[SchoolSpec, ...]
    classes: tuple[ClassSpec, ...]
    # user key -> school key (students, teachers and school admins belong to exactly one school)
    school_of: dict[str, str] = field(repr=False)
    # class key -> user keys
    students_of: dict[str, tuple[str, ...]] = field(repr=False)
    teachers_of: dict[str, tuple[str, ...]] = field(repr=False)

    def users_with_role(self, role: str) -> list[UserSpec]:
        return [u for u in self.users if u.role == role]

    def canonical(self) -> dict:
        return {
            "profile": asdict(self.profile),
            "seed": self.seed,
            "namespace": self.namespace,
            "users": [asdict(u) for u in self.users],
            "organizations": [asdict(o) for o in self.organizations],
            "schools": [asdict(s) for s in self.schools],
            "classes": [asdict(c) for c in self.classes],
            "school_of": dict(sorted(self.school_of.items())),
            "students_of": {k: list(v) for k, v in sorted(self.students_of.items())},
            "teachers_of": {k: list(v) for k, v in sorted(self.teachers_of.items())},
        }

    def content_hash(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    @property
    def email_marker(self) -> str:
        """A substring of every email of this dataset and of no other namespace's: what a
        namespaced dataset's users are counted by beside other data."""
        return f".{self.namespace}-" if self.namespace else f"@{EMAIL_DOMAIN}"

    def expected_counts(self) -> dict[str, int]:
        """What the target holds after seeding, per entity and link (keys as in seeder.read_counts).

        Owners join their organization through createOrganizations, so every user has one
        organization membership; teachers, students and school admins one school membership
        each. ``organization_admins`` are the users holding the Organization Admin role: the
        owners (createOrganizations gives it to them) and the org admins.
        """
        teachers, students = len(self.users_with_role(TEACHER)), len(self.users_with_role(STUDENT))
        school_admins = len(self.users_with_role(SCHOOL_ADMIN))
        return {
            "organizations": len(self.organizations),
            "schools": len(self.schools),
            "classes": len(self.classes),
            "teachers": teachers,
            "students": students,
            "organization_admins": len(self.organizations) + len(self.users_with_role(ORG_ADMIN)),
            "school_admins": school_admins,
            "users": len(self.users),
            "organization_memberships": len(self.users),
            "school_memberships": teachers + students + school_admins,
            "school_classes": len(self.classes),
            "class_students": sum(len(v) for v in self.students_of.values()),
            "class_teachers": sum(len(v) for v in self.teachers_of.values()),
        }


def generate(profile: DatasetProfile, seed: int = 0, namespace: str = "") -> Dataset:
    """The dataset of ``profile`` and ``seed``; ``namespace`` makes names unique beside other data."""
    rng = random.Random(f"{profile.name}:{seed}:{namespace}")
    tag = f"{namespace}-" if namespace else ""
    users: list[UserSpec] = []
    organizations: list[OrganizationSpec] = []
    schools: list[SchoolSpec] = []
    classes: list[ClassSpec] = []
    school_of: dict[str, str] = {}
    students_of: dict[str, list[str]] = {}
    teachers_of: dict[str, list[str]] = {}

    def new_user(key: str, role: str, org: str, birth_years: range) -> UserSpec:
        given, family = rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES)
        user = UserSpec(
            key=key, role=role, organization=org, given_name=given, family_name=family,
            email=f"{given}.{family}.{tag}{key}@{EMAIL_DOMAIN}".lower(),
            gender=rng.choice(GENDERS),
            date_of_birth=f"{rng.randint(1, 12):02d}-{rng.choice(birth_years)}",
        )
        users.append(user)
        return user

    for o in range(profile.organizations):
        org = f"o{o}"
        owner = new_user(f"{org}-owner", OWNER, org, range(1970, 1995))
        organizations.append(OrganizationSpec(org, f"ULT {tag}Org {o}"[:30], owner.key))
        org_schools = []
        for s in range(profile.schools_per_organization):
            school = SchoolSpec(f"{org}-s{s}", org, f"{tag}School {o}-{s}", f"S{o}X{s}"[:10])
            schools.append(school)
            org_schools.append(school)
            for c in range(profile.classes_per_school):
                cls = ClassSpec(f"{school.key}-c{c}", org, school.key, f"{tag}Class {o}-{s}-{c}")
                classes.append(cls)
                students_of[cls.key] = []
                teachers_of[cls.key] = []

        teachers = [new_user(f"{org}-t{t}", TEACHER, org, range(1965, 2000)) for t in range(profile.teachers_per_organization)]
        for i, teacher in enumerate(teachers):
            school_of[teacher.key] = org_schools[i % len(org_schools)].key
        for school in org_schools:
            school_teachers = [t for t in teachers if school_of[t.key] == school.key]
            school_classes = [c for c in classes if c.school == school.key]
            # Every class gets a teacher; teachers beyond the class count co-teach.
            for i in range(max(len(school_classes), len(school_teachers))):
                teachers_of[school_classes[i % len(school_classes)].key].append(school_teachers[i % len(school_teachers)].key)

        students = [new_user(f"{org}-u{u}", STUDENT, org, range(2008, 2020)) for u in range(profile.students_per_organization)]
        order = list(range(len(students)))
        rng.shuffle(order)
        org_classes = [c for c in classes if c.organization == org]
        for position, index in enumerate(order):
            cls = org_classes[position % len(org_classes)]
            student = students[index]
            school_of[student.key] = cls.school
            students_of[cls.key].append(student.key)

        # Admins last, so that adding them leaves every other user's data as it was.
        for a in range(profile.org_admins_per_organization):
            new_user(f"{org}-a{a}", ORG_ADMIN, org, range(1965, 1995))
        for school in org_schools:
            for a in range(profile.school_admins_per_school):
                admin = new_user(f"{school.key}-a{a}", SCHOOL_ADMIN, org, range(1965, 1995))
                school_of[admin.key] = school.key

    return Dataset(
        profile=profile, seed=seed, namespace=namespace, users=tuple(users), organizations=tuple(organizations),
        schools=tuple(schools), classes=tuple(classes), school_of=school_of,
        students_of={k: tuple(v) for k, v in students_of.items()},
        teachers_of={k: tuple(dict.fromkeys(v)) for k, v in teachers_of.items()},
    )
