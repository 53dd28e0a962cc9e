"""Packing mutation inputs into calls the API accepts (pure functions)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")

# The API refuses any mutation input array longer than this (ERR_INVALID_ARRAY_MAX_LENGTH).
MAX_ELEMENTS = 50


def chunks(items: Sequence[T], size: int = MAX_ELEMENTS) -> list[list[T]]:
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def pack_unique(elements: Sequence[T], key: Callable[[T], Hashable], size: int = MAX_ELEMENTS) -> list[list[T]]:
    """Calls of at most ``size`` elements in which no ``key`` appears twice.

    The API refuses a call that names the same organization, school or class twice
    (ERR_DUPLICATE_ATTRIBUTE_VALUES): the n-th element of each key goes to the n-th round,
    and each round is cut into calls of ``size``. Order within a key is kept.
    """
    rounds: list[list[T]] = []
    seen: dict[Hashable, int] = {}
    for element in elements:
        k = key(element)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(element)
    return [call for round_ in rounds for call in chunks(round_, size)]
