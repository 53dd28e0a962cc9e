"""Resolvers, split by concern; `bindables()` hands them all to ariadne."""

from __future__ import annotations

from . import class_writes, classes, common, my_user, organizations, roles, rosters, schools, user_writes, users


def bindables() -> list:
    return [
        *common.BINDABLES,
        *users.BINDABLES,
        *organizations.BINDABLES,
        *schools.BINDABLES,
        *classes.BINDABLES,
        *class_writes.BINDABLES,
        *rosters.BINDABLES,
        *roles.BINDABLES,
        *my_user.BINDABLES,
        *user_writes.BINDABLES,
    ]
