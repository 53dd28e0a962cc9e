"""Resolvers, split by concern; `bindables()` hands them all to ariadne."""

from __future__ import annotations

from . import classes, common, my_user, organizations, roles, schools, users


def bindables() -> list:
    return [
        *common.BINDABLES,
        *users.BINDABLES,
        *organizations.BINDABLES,
        *schools.BINDABLES,
        *classes.BINDABLES,
        *roles.BINDABLES,
        *my_user.BINDABLES,
    ]
