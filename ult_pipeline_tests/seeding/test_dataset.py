import pytest

from ult_pipeline.seeding.dataset import STUDENT, TEACHER, generate
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


@pytest.mark.parametrize("name", ["tiny", "standard"])
def test_counts_follow_the_profile(name):
    profile = PROFILES[name]
    dataset = generate(profile, 1)
    assert dataset.expected_counts() == {
        "organizations": profile.organizations, "schools": profile.schools, "classes": profile.classes,
        "teachers": profile.teachers, "students": profile.students, "users": profile.users,
        "organization_memberships": profile.users, "school_memberships": profile.teachers + profile.students,
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
    with pytest.raises(ValueError, match="unknown dataset profile 'nope'.*tiny"):
        get_profile("nope")
    with pytest.raises(ValueError, match="students_per_organization"):
        DatasetProfile("bad", 1, 1, 1, 1, 0)
