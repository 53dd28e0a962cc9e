import pytest

from ult_pipeline.seeding.dataset import ORG_ADMIN, SCHOOL_ADMIN, STUDENT, TEACHER, generate
from ult_pipeline.seeding.profiles import PROFILES, DatasetProfile, get_profile


def test_same_profile_and_seed_give_the_same_data_and_hash():
    a, b = generate(PROFILES["tiny"], 7), generate(PROFILES["tiny"], 7)
    assert a.canonical() == b.canonical()
    assert a.content_hash() == b.content_hash()


def test_another_seed_or_namespace_gives_other_data():
    base = generate(PROFILES["tiny"], 7)
    assert generate(PROFILES["tiny"], 8).content_hash() != base.content_hash()
    other = generate(PROFILES["tiny"], 7, namespace="x1")
    assert other.content_hash() != base.content_hash()
    assert not {u.email for u in other.users} & {u.email for u in base.users}


@pytest.mark.parametrize("name", ["tiny", "standard", "large"])
def test_counts_follow_the_profile(name):
    profile = PROFILES[name]
    dataset = generate(profile, 1)
    assert dataset.expected_counts() == {
        "organizations": profile.organizations, "schools": profile.schools, "classes": profile.classes,
        "teachers": profile.teachers, "students": profile.students,
        "organization_admins": profile.organizations + profile.org_admins, "school_admins": profile.school_admins,
        "users": profile.users, "organization_memberships": profile.users,
        "school_memberships": profile.teachers + profile.students + profile.school_admins,
        "school_classes": profile.classes, "class_students": profile.students,
        # Every class has a teacher; teachers beyond the class count co-teach (tiny: 5 for 4 classes).
        "class_teachers": sum(max(profile.classes_per_school, len(range(t, profile.teachers_per_organization,
                                                                          profile.schools_per_organization)))
                              for _ in range(profile.organizations) for t in range(profile.schools_per_organization)),
    }


def test_rosters_are_consistent():
    dataset = generate(PROFILES["standard"], 3)
    school_of_class = {c.key: c.school for c in dataset.classes}
    rostered = [s for students in dataset.students_of.values() for s in students]
    assert sorted(rostered) == sorted(u.key for u in dataset.users_with_role(STUDENT))  # each student in one class
    for cls, students in dataset.students_of.items():
        assert all(dataset.school_of[s] == school_of_class[cls] for s in students)
    for cls, teachers in dataset.teachers_of.items():
        assert teachers, f"class {cls} has no teacher"
        assert all(dataset.school_of[t] == school_of_class[cls] for t in teachers)
    taught = {t for ts in dataset.teachers_of.values() for t in ts}
    assert taught == {u.key for u in dataset.users_with_role(TEACHER)}
    assert len({u.email for u in dataset.users}) == len(dataset.users)
    assert all(len(o.name) <= 30 for o in dataset.organizations)


def test_builtin_profiles_are_the_documented_ones():
    assert (PROFILES["tiny"].schools, PROFILES["tiny"].classes, PROFILES["tiny"].teachers, PROFILES["tiny"].students) == (2, 4, 5, 100)
    assert (PROFILES["standard"].schools, PROFILES["standard"].classes, PROFILES["standard"].students) == (10, 40, 2000)
    assert (PROFILES["large"].organizations, PROFILES["large"].students) == (10, 100_000)


def test_custom_profiles_and_bad_ones():
    custom = {"mine": {"organizations": 2, "schools_per_organization": 1, "classes_per_school": 1,
                       "teachers_per_organization": 1, "students_per_organization": 3}}
    assert get_profile("mine", custom).students == 6
    # Admin counts are optional (defaults: 2 per organization, 1 per school), and may be 0.
    mine = get_profile("mine", custom)
    assert (mine.org_admins_per_organization, mine.school_admins_per_school) == (2, 1)
    assert (mine.org_admins, mine.school_admins, mine.users) == (4, 2, 2 + 4 + 2 + 2 + 6)
    none = get_profile("none", {"none": {**custom["mine"], "org_admins_per_organization": 0,
                                         "school_admins_per_school": 0}})
    assert none.users == 2 + 2 + 6
    dataset = generate(none, 1)
    assert not dataset.users_with_role(ORG_ADMIN) and not dataset.users_with_role(SCHOOL_ADMIN)
    assert dataset.expected_counts()["users"] == none.users
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="school_admins_per_school must be a whole number >= 0"):
            DatasetProfile("bad", 1, 1, 1, 1, 1, 2, bad)
    with pytest.raises(ValueError, match="unknown dataset profile 'nope'.*tiny"):
        get_profile("nope")
    with pytest.raises(ValueError, match="students_per_organization"):
        DatasetProfile("bad", 1, 1, 1, 1, 0)


@pytest.mark.parametrize("name", ["tiny", "standard", "large"])
def test_every_profile_has_admins_enough_for_write_journeys(name):
    profile = PROFILES[name]
    dataset = generate(profile, 2)
    org_admins, school_admins = dataset.users_with_role(ORG_ADMIN), dataset.users_with_role(SCHOOL_ADMIN)
    assert len(org_admins) == profile.org_admins >= 2 * profile.organizations
    assert len(school_admins) == profile.school_admins >= profile.schools
    for organization in dataset.organizations:
        assert sum(a.organization == organization.key for a in org_admins) >= 2
    # Org admins belong to no school; each school admin to one school of its organization, and
    # every school has one.
    assert not any(a.key in dataset.school_of for a in org_admins)
    school_org = {s.key: s.organization for s in dataset.schools}
    assert all(school_org[dataset.school_of[a.key]] == a.organization for a in school_admins)
    assert {dataset.school_of[a.key] for a in school_admins} == set(school_org)
    # Admins are on no class roster; owners are no admins of these roles.
    rostered = {u for m in (dataset.students_of, dataset.teachers_of) for us in m.values() for u in us}
    assert not rostered & {a.key for a in org_admins + school_admins}
    assert {o.owner for o in dataset.organizations}.isdisjoint(a.key for a in org_admins)


def test_admins_are_deterministic_and_in_the_content_hash():
    a, b = generate(PROFILES["tiny"], 7), generate(PROFILES["tiny"], 7)
    admins = [u for u in a.users if u.role in (ORG_ADMIN, SCHOOL_ADMIN)]
    assert admins and admins == [u for u in b.users if u.role in (ORG_ADMIN, SCHOOL_ADMIN)]
    assert a.content_hash() == b.content_hash()
    # One admin more or less is another dataset.
    more = DatasetProfile("tiny", 1, 2, 2, 5, 100, org_admins_per_organization=3)
    assert generate(more, 7).content_hash() != a.content_hash()
    # Admins come after everyone else: the owners, teachers and students are those of a profile
    # without admins.
    without = DatasetProfile("tiny", 1, 2, 2, 5, 100, 0, 0)
    others = [u for u in a.users if u.role not in (ORG_ADMIN, SCHOOL_ADMIN)]
    assert others == list(generate(without, 7).users)
