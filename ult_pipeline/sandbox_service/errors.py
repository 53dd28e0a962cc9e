"""Errors in the real service's shapes.

Input errors come back as one GraphQL error whose message is `ERR_API_BAD_INPUT` and
whose extensions list each problem with its code, entity, attribute and input index, in
`extensions.exception.errors` as the real service (and, for the sandbox's older clients, in
`extensions.errors` too). Other refusals (the outer array length, a permission, a malformed
UUID, a failed save) come back with `extensions.code` `INTERNAL_SERVER_ERROR` (MUTATIONS.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from graphql import GraphQLError

BAD_INPUT = "ERR_API_BAD_INPUT"
MAX_INPUT_LENGTH = 50

INVALID_ARRAY_MAX_LENGTH = "ERR_INVALID_ARRAY_MAX_LENGTH"
INVALID_ARRAY_MIN_LENGTH = "ERR_INVALID_ARRAY_MIN_LENGTH"
DUPLICATE_ATTRIBUTE_VALUES = "ERR_DUPLICATE_ATTRIBUTE_VALUES"
NON_EXISTENT_ENTITY = "ERR_NON_EXISTENT_ENTITY"
NON_EXISTENT_CHILD_ENTITY = "ERR_NON_EXISTENT_CHILD_ENTITY"
DUPLICATE_CHILD_ENTITY = "ERR_DUPLICATE_CHILD_ENTITY"
DUPLICATE_CHILD_ENTITY_ATTRIBUTE = "ERR_DUPLICATE_CHILD_ENTITY_ATTRIBUTE"
INVALID_MAX_LENGTH = "ERR_INVALID_MAX_LENGTH"
USER_ALREADY_OWNS_ORGANIZATION = "ERR_USER_ALREADY_OWNS_ORGANIZATION"
NONEXISTENT_ENTITY_OR_INACTIVE_STATUS = "ERR_NONEXISTENT_ENTITY_OR_INACTIVE_STATUS"
DUPLICATE_INPUT_ATTRIBUTE_VALUE = "ERR_DUPLICATE_INPUT_ATTRIBUTE_VALUE"
INVALID_ALPHANUMERIC = "ERR_INVALID_ALPHANUMERIC"
SOURCE_AND_DESTINATION_DONT_MATCH = "SOURCE_AND_DESTINATION_DONT_MATCH"
TOO_MANY_RELATIONS = "TOO_MANY_RELATIONS"
ERROR_SAVING = "ERROR_SAVING"
INVALID_UUID = "ERR_INVALID_UUID"
UNAUTHORIZED = "UNAUTHORIZED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


@dataclass(frozen=True)
class InputProblem:
    code: str
    message: str
    entity: str
    attribute: str
    index: int | None = None


class APIInputError(GraphQLError):
    """An expected refusal of a request's input; never logged with a traceback."""

    def __init__(self, problems: list[InputProblem]) -> None:
        listed = [asdict(p) for p in problems]
        super().__init__(
            BAD_INPUT,
            extensions={"code": BAD_INPUT, "exception": {"errors": listed}, "errors": listed},
        )
        self.problems = problems


class PermissionDenied(GraphQLError):
    """`User(<id>) does not have Permission(<name>) in Organizations(<ids>)`: message only,
    `extensions.code` INTERNAL_SERVER_ERROR (MUTATIONS.md)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": INTERNAL_SERVER_ERROR})


class InternalServerError(GraphQLError):
    """A refusal the real service throws outside its input-error collection: the outer array
    length (its code in `extensions.exception.code`), a malformed UUID, a failed save."""

    def __init__(self, message: str, exception: dict | None = None, *, compat_errors: list[dict] | None = None) -> None:
        extensions: dict = {"code": INTERNAL_SERVER_ERROR}
        if exception is not None:
            extensions["exception"] = exception
        if compat_errors:
            # Not in the real service's answer: the sandbox's older clients read element codes there.
            extensions["errors"] = compat_errors
        super().__init__(message, extensions=extensions)


def raise_if_any(problems: list[InputProblem]) -> None:
    if problems:
        raise APIInputError(problems)


def malformed_uuid(value: object) -> InternalServerError:
    """What PostgreSQL says of an id that is not a UUID; the real service passes it on."""
    return InternalServerError(f'invalid input syntax for type uuid: "{value}"')


def saving_failed(detail: str) -> InternalServerError:
    """ERROR_SAVING: the save failed (e.g. a duplicate key in a racing roster write)."""
    return InternalServerError(ERROR_SAVING, {"code": ERROR_SAVING, "message": detail})


def too_long_input(length: int, input_name: str = "input") -> InputProblem:
    return InputProblem(
        INVALID_ARRAY_MAX_LENGTH,
        f"{input_name} must contain at most {MAX_INPUT_LENGTH} elements, got {length}.",
        "",
        input_name,
    )


def check_input_length(items: list, input_name: str = "input") -> None:
    """The outer array's 1..50 rule: INTERNAL_SERVER_ERROR, its code in `extensions.exception.code`."""
    if len(items) > MAX_INPUT_LENGTH:
        problem = too_long_input(len(items), input_name)
    elif not items:
        problem = InputProblem(INVALID_ARRAY_MIN_LENGTH, f"{input_name} must contain at least 1 element.", "", input_name)
    else:
        return
    raise InternalServerError(problem.message, asdict(problem), compat_errors=[asdict(problem)])


def duplicates(items: list[dict], key: str, entity: str) -> list[InputProblem]:
    """One problem per repeated value of `key`, at the index where it repeats."""
    seen: set = set()
    problems = []
    for index, item in enumerate(items):
        value = item.get(key)
        if value in seen:
            problems.append(
                InputProblem(
                    DUPLICATE_ATTRIBUTE_VALUES,
                    f"On index {index}, {entity} {key} {value} is a duplicate; each {key} may appear once per call.",
                    entity,
                    key,
                    index,
                )
            )
        seen.add(value)
    return problems


def missing(entity: str, entity_id: str, index: int | None, attribute: str = "id") -> InputProblem:
    return InputProblem(
        NON_EXISTENT_ENTITY,
        f"On index {index}, {entity} {entity_id} doesn't exist or is inactive.",
        entity,
        attribute,
        index,
    )


def missing_child(entity: str, entity_id: str, parent: str, parent_id: str, index: int) -> InputProblem:
    return InputProblem(
        NON_EXISTENT_CHILD_ENTITY,
        f"On index {index}, {entity} {entity_id} doesn't exist for {parent} {parent_id}.",
        entity,
        "id",
        index,
    )


def duplicate_child(entity: str, entity_id: str, parent: str, parent_id: str, index: int) -> InputProblem:
    """The real service's refusal of an add that is already in place (adds are not idempotent)."""
    return InputProblem(
        DUPLICATE_CHILD_ENTITY,
        f"On index {index}, {entity} {entity_id} already exists for {parent} {parent_id}.",
        entity,
        "id",
        index,
    )
