"""Dataset profiles: every dataset is fully determined by a profile and a seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DatasetProfile:
    name: str
    organizations: int
    schools_per_organization: int
    classes_per_school: int
    teachers_per_organization: int
    students_per_organization: int

    def __post_init__(self) -> None:
        for field_name, value in asdict(self).items():
            if field_name != "name" and (not isinstance(value, int) or value < 1):
                raise ValueError(f"dataset profile {self.name!r}: {field_name} must be a whole number >= 1, got {value!r}")
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
    def users(self) -> int:
        # One owner (Organization Admin) per organization besides teachers and students.
        return self.organizations + self.teachers + self.students


PROFILES: dict[str, DatasetProfile] = {
    p.name: p
    for p in [
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
