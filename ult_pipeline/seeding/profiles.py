"""Dataset profiles: every dataset is fully determined by a profile and a seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Fields a profile may leave out (their defaults) or set to 0.
OPTIONAL_COUNTS = ("org_admins_per_organization", "school_admins_per_school")


@dataclass(frozen=True)
class DatasetProfile:
    name: str
    organizations: int
    schools_per_organization: int
    classes_per_school: int
    teachers_per_organization: int
    students_per_organization: int
    # Administrators for write journeys, users of their own (the owner is not one of them):
    # Organization Admins on their organization membership, no school; School Admins with the
    # School Admin role on their organization membership and a membership of one school.
    org_admins_per_organization: int = 2
    school_admins_per_school: int = 1

    def __post_init__(self) -> None:
        for field_name, value in asdict(self).items():
            if field_name == "name":
                continue
            least = 0 if field_name in OPTIONAL_COUNTS else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"dataset profile {self.name!r}: {field_name} must be a whole number >= {least}, got {value!r}"
                )
        if self.teachers_per_organization < self.schools_per_organization:
            raise ValueError(
                f"dataset profile {self.name!r}: needs at least one teacher per school "
                f"({self.teachers_per_organization} teachers for {self.schools_per_organization} schools)"
            )

    @property
    def schools(self) -> int:
        return self.organizations * self.schools_per_organization

    @property
    def classes(self) -> int:
        return self.schools * self.classes_per_school

    @property
    def teachers(self) -> int:
        return self.organizations * self.teachers_per_organization

    @property
    def students(self) -> int:
        return self.organizations * self.students_per_organization

    @property
    def org_admins(self) -> int:
        return self.organizations * self.org_admins_per_organization

    @property
    def school_admins(self) -> int:
        return self.schools * self.school_admins_per_school

    @property
    def users(self) -> int:
        # One owner (Organization Admin) per organization besides the admins, teachers and students.
        return self.organizations + self.org_admins + self.school_admins + self.teachers + self.students


PROFILES: dict[str, DatasetProfile] = {
    p.name: p
    for p in [
        # Each with the default admins: 2 Organization Admins per organization, 1 School Admin per school.
        DatasetProfile("tiny", 1, 2, 2, 5, 100),
        DatasetProfile("standard", 1, 10, 4, 50, 2_000),
        # The scale of the old environment's account pool.
        DatasetProfile("large", 10, 10, 4, 50, 10_000),
    ]
}


def get_profile(name: str, custom: dict[str, dict] | None = None) -> DatasetProfile:
    """A built-in profile, or one defined in configuration under ``custom``."""
    if custom and name in custom:
        return DatasetProfile(name=name, **custom[name])
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted({*PROFILES, *(custom or {})}))
        raise ValueError(f"unknown dataset profile {name!r}; known profiles: {known}") from None
