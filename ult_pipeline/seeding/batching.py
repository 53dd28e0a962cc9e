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
    return [call for round_ in _rounds(elements, key) for call in chunks(round_, size)]


def _rounds(elements: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """The n-th element of each ``key`` in the n-th round, order within a key kept."""
    rounds: list[list[T]] = []
    seen: dict[Hashable, int] = {}
    for element in elements:
        k = key(element)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(element)
    return rounds


def cut(items: Sequence[T], size: int = MAX_ELEMENTS, weight: Callable[[T], int] | None = None,
        budget: int | None = None, separator: int = 0) -> list[list[T]]:
    """``items`` in order, cut into calls of at most ``size`` items whose weights, plus
    ``separator`` between two items, add up to at most ``budget`` (no budget: by count only).

    A single item heavier than the budget cannot be sent in any call: ValueError.
    """
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    if budget is None or weight is None:
        return chunks(items, size)
    calls: list[list[T]] = []
    current: list[T] = []
    used = 0
    for item in items:
        w = weight(item)
        if w > budget:
            raise ValueError(f"one element weighs {w} (bytes), more than a whole call may ({budget}); split it first")
        extra = w + (separator if current else 0)
        if current and (len(current) == size or used + extra > budget):
            calls.append(current)
            current, used, extra = [], 0, w
        current.append(item)
        used += extra
    if current:
        calls.append(current)
    return calls


def pack_rounds(elements: Sequence[T], key: Callable[[T], Hashable] | None = None, size: int = MAX_ELEMENTS,
                weight: Callable[[T], int] | None = None, budget: int | None = None,
                separator: int = 0, spread: int = 1) -> list[list[list[T]]]:
    """Rounds of calls: the n-th element of each ``key`` in the n-th round (as `pack_unique`),
    each round `cut` by count and weight. No two calls of one round name the same key, so a
    round's calls may run at once even where writes to one key must not overlap. Without a
    key, one round.

    ``spread``: a round that would make fewer calls is cut into up to that many calls of
    near-equal counts (calls only get smaller), so that that many can run at once.
    """
    if key is None:
        rounds: list[list[T]] = [list(elements)] if elements else []
    else:
        rounds = _rounds(elements, key)
    packed = []
    for round_ in rounds:
        calls = cut(round_, size, weight, budget, separator)
        if len(calls) < spread and len(round_) > len(calls):
            parts = min(spread, len(round_))
            calls = cut(round_, min(size, -(-len(round_) // parts)), weight, budget, separator)
        packed.append(calls)
    return packed
