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
