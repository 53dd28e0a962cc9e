import pytest

from ult_pipeline.seeding.batching import MAX_ELEMENTS, chunks, pack_unique


def test_chunks_never_exceed_the_api_limit():
    calls = chunks(list(range(101)))
    assert [len(c) for c in calls] == [50, 50, 1]
    assert sum(calls, []) == list(range(101))


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError):
        chunks([1], 0)


def test_pack_unique_keeps_each_key_once_per_call_and_loses_nothing():
    elements = [{"org": o, "n": n} for o in "ab" for n in range(3)] + [{"org": "c", "n": 0}]
    calls = pack_unique(elements, lambda e: e["org"])
    for call in calls:
        keys = [e["org"] for e in call]
        assert len(keys) == len(set(keys))
    assert sorted((e["org"], e["n"]) for c in calls for e in c) == sorted((e["org"], e["n"]) for e in elements)
    # Order within one key is kept: the n-th element of a key is in the n-th call.
    assert [[e["n"] for e in c if e["org"] == "a"] for c in calls] == [[0], [1], [2]]


def test_pack_unique_cuts_rounds_at_the_limit():
    elements = [{"school": s} for s in range(120)]
    calls = pack_unique(elements, lambda e: e["school"])
    assert [len(c) for c in calls] == [MAX_ELEMENTS, MAX_ELEMENTS, 20]


def test_cut_stops_at_the_budget_counting_separators_and_keeps_order():
    from ult_pipeline.seeding.batching import cut

    calls = cut(list(range(10)), size=50, weight=lambda _: 10, budget=34, separator=2)
    # 10 + 2 + 10 + 2 + 10 = 34 fits; a fourth would not.
    assert [len(c) for c in calls] == [3, 3, 3, 1]
    assert sum(calls, []) == list(range(10))
    assert [len(c) for c in cut(list(range(7)), size=2, weight=lambda _: 1, budget=100)] == [2, 2, 2, 1]


def test_pack_rounds_keeps_each_key_once_per_round():
    from ult_pipeline.seeding.batching import pack_rounds

    elements = [{"k": k, "n": n} for k in "abc" for n in range(2)]
    rounds = pack_rounds(elements, lambda e: e["k"], size=2, weight=lambda _: 1, budget=10)
    assert [[[(e["k"], e["n"]) for e in call] for call in r] for r in rounds] == [
        [[("a", 0), ("b", 0)], [("c", 0)]], [[("a", 1), ("b", 1)], [("c", 1)]],
    ]
    assert pack_rounds([], None) == []


def test_pack_rounds_spreads_a_small_round_over_more_calls():
    from ult_pipeline.seeding.batching import pack_rounds

    rounds = pack_rounds(list(range(40)), None, spread=4)
    assert [len(c) for c in rounds[0]] == [10, 10, 10, 10]
    assert [len(c) for c in pack_rounds(list(range(3)), None, spread=8)[0]] == [1, 1, 1]
    assert [len(c) for c in pack_rounds(list(range(120)), None, spread=2)[0]] == [50, 50, 20]
