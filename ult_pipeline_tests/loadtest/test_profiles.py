import pytest

from ult_pipeline.loadtest.profiles import LOAD_PROFILES, LoadProfile, duration_seconds, get_load_profile


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("10m", 600), ("1m30s", 90), ("1h", 3600)])
def test_durations(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "5d"])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(ValueError, match="like 30s"):
        duration_seconds(text)


def test_the_default_load_is_the_old_tests():
    default = LOAD_PROFILES["default"]
    assert (default.rate, default.seconds, default.pre_allocated_vus, default.max_vus) == (22, 600, 100, 1000)
    env = default.with_overrides(duration="30s", rate=None).k6_env()
    assert env["ULT_DURATION"] == "30s" and env["ULT_RATE"] == "22"


def test_bad_profiles_are_refused():
    with pytest.raises(ValueError, match="scenario 'x'"):
        LoadProfile(scenario="x")
    with pytest.raises(ValueError, match="unknown load profile"):
        get_load_profile("huge")


def test_a_large_rate_reaches_k6_as_digits():
    # k6/lib/env.js accepts digits only; "1e+06" made k6 refuse the run after the wipe and the seeding.
    assert LoadProfile(rate=1_000_000.0).k6_env()["ULT_RATE"] == "1000000"
