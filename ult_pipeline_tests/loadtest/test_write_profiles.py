"""LoadProfile, settings and `ult run` options for the write scenarios (no k6, no service)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ult_pipeline.loadtest.profiles import LOAD_PROFILES, SCENARIOS, LoadProfile
from ult_pipeline.settings import PipelineSettings


def test_the_write_scenarios_are_accepted_and_reach_k6():
    assert {"admin_writes", "roster_contention"} <= set(SCENARIOS)
    env = LoadProfile(scenario="roster_contention", rate=2, contention_writers=20).k6_env()
    assert (env["ULT_SCENARIO"], env["ULT_CONTENTION_WRITERS"], env["ULT_ADMIN_WRITES_WEIGHT"]) == (
        "roster_contention", "20", "0")
    mixed = LoadProfile(scenario="mixed", student_weight=70, teacher_weight=20, admin_writes_weight=10)
    assert mixed.k6_env()["ULT_ADMIN_WRITES_WEIGHT"] == "10" and mixed.writes
    assert not LOAD_PROFILES["default"].writes and LoadProfile(scenario="admin_writes").writes


@pytest.mark.parametrize("overrides,message", [
    ({"contention_writers": 1}, "contention_writers"),
    ({"contention_writers": 51}, "contention_writers"),
    ({"admin_writes_weight": -1}, "admin_writes_weight"),
    ({"student_weight": 0, "teacher_weight": 0}, "not all 0"),
])
def test_bad_write_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        LoadProfile(**overrides)


def test_the_default_profile_and_its_fingerprint_stay_what_they_were():
    """History compares `load_profile` dicts: a read run's must not gain the new fields."""
    default = LOAD_PROFILES["default"]
    assert (default.scenario, default.rate, default.admin_writes_weight) == ("student_landing", 22, 0)
    assert default.to_json() == {"name": "default", "scenario": "student_landing", "rate": 22.0, "duration": "10m",
                                 "pre_allocated_vus": 100, "max_vus": 1000, "student_weight": 80, "teacher_weight": 20}
    weighted = default.with_overrides(scenario="mixed", admin_writes_weight=10, contention_writers=12)
    assert LoadProfile(**weighted.to_json()) == weighted


def test_the_writes_weight_setting_reaches_the_run_config_only_when_set():
    assert "admin_writes_weight" not in PipelineSettings.from_env({}).run_config()["ops"]["k6_results"]["config"]
    config = PipelineSettings.from_env({"ULT_ADMIN_WRITES_WEIGHT": "10", "ULT_SCENARIO": "mixed"}).run_config()
    assert config["ops"]["k6_results"]["config"] == {"load_profile": "default", "scenario": "mixed",
                                                     "admin_writes_weight": 10}
    with pytest.raises(ValueError, match="ULT_ADMIN_WRITES_WEIGHT"):
        PipelineSettings.from_env({"ULT_ADMIN_WRITES_WEIGHT": "-3"})


def test_ult_run_offers_the_write_scenarios_and_refuses_bad_writers():
    from ult_pipeline.cli.run import run_command

    help_text = CliRunner().invoke(run_command, ["--help"]).output
    assert "admin_writes" in help_text and "roster_contention" in help_text and "lost writes" in help_text
    refused = CliRunner().invoke(run_command, ["--scenario", "roster_contention", "--writers", "60"])
    assert refused.exit_code == 2 and "--writers" in refused.output
