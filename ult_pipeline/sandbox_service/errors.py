"""Errors in the real service's shapes.

Input errors come back as one GraphQL error whose message is `ERR_API_BAD_INPUT` and
whose extensions list each problem with its code, entity, attribute and input index.
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
INVALID_UUID = "ERR_INVALID_UUID"
UNAUTHORIZED = "UNAUTHORIZED"


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
        super().__init__(
            BAD_INPUT,
            extensions={"code": BAD_INPUT, "errors": [asdict(p) for p in problems]},
        )
        self.problems = problems


class PermissionDenied(GraphQLError):
    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": UNAUTHORIZED})


def raise_if_any(problems: list[InputProblem]) -> None:
    if problems:
        raise APIInputError(problems)


def too_long_input(length: int, input_name: str = "input") -> InputProblem:
    return InputProblem(
        INVALID_ARRAY_MAX_LENGTH,
        f"{input_name} must contain at most {MAX_INPUT_LENGTH} elements, got {length}.",
        "",
        input_name,
    )


def check_input_length(items: list, input_name: str = "input") -> None:
    if len(items) > MAX_INPUT_LENGTH:
        raise APIInputError([too_long_input(len(items), input_name)])
    if not items:
        raise APIInputError(
            [InputProblem(INVALID_ARRAY_MIN_LENGTH, f"{input_name} must not be empty.", "", input_name)]
        )


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
