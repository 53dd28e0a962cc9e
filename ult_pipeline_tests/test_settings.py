"""One registry of environment variables: read in one place, and the README documents exactly it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ult_pipeline.settings import VARIABLES, PipelineSettings, markdown_table, setting

ROOT = Path(__file__).resolve().parents[1]
# The k6 suite's variables (k6/README.md) and the sandbox service's own, set by the sandbox for its child.
NOT_THE_PIPELINES = {"ULT_SANDBOX_SERVICE_DSN", "ULT_SANDBOX_API_KEY", "ULT_IDENTITIES", "ULT_BUILD"}


def readme_block() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("<!-- variables -->\n", 1)[1].split("\n<!-- /variables -->", 1)[0]


def test_the_readmes_table_of_variables_is_the_registry():
    # Regenerate with: python -m ult_pipeline.settings
    assert readme_block() == markdown_table()


def test_every_variable_the_readme_names_is_registered():
    readme = (ROOT / "README.md").read_text()
    k6_readme = (ROOT / "k6" / "README.md").read_text()
    suite_only = set(re.findall(r"`(ULT_[A-Z_]+)`", k6_readme)) - set(VARIABLES)
    documented = set(re.findall(r"\bULT_[A-Z0-9_]*[A-Z0-9]\b", readme)) - NOT_THE_PIPELINES - suite_only
    assert documented - set(VARIABLES) == set(), "in README.md but not registered in ult_pipeline/settings.py"


def test_no_module_reads_a_pipeline_variable_around_the_registry():
    # The registry's readers are settings.setting/env_var; the sandbox's child environment and k6's
    # explicit environment are built, not read.
    offenders = []
    for path in (ROOT / "ult_pipeline").rglob("*.py"):
        text = path.read_text()
        # Also `os.environ.get(SOME_CONSTANT)`: only the registry reads the environment by name.
        for match in re.finditer(r"""os\.environ\.get\(\s*([A-Z_]+)\b""", text):
            offenders.append(f"{path.relative_to(ROOT)}: os.environ.get({match.group(1)})")
        for match in re.finditer(r"""(?:environ\.get|env\.get|getenv|EnvVar)\(\s*["'](ULT_[A-Z_]+)""", text):
            if match.group(1) in VARIABLES and path.name != "settings.py":
                offenders.append(f"{path.relative_to(ROOT)}: {match.group(1)}")
    assert offenders == []


def test_empty_is_unset_and_numbers_name_their_variable():
    assert setting({"ULT_RESULTS_DIR": ""}, "ULT_RESULTS_DIR") == "~/.ult/results"
    assert PipelineSettings.from_env({"ULT_LOAD_RATE": "5"}).load_rate == 5.0
    with pytest.raises(ValueError, match=r"ULT_SENSOR_INTERVAL_S='often' is not a whole number"):
        PipelineSettings.from_env({"ULT_SENSOR_INTERVAL_S": "often"})


def test_a_sensor_interval_below_one_second_is_refused():
    for value in ("0", "-5"):
        with pytest.raises(ValueError, match="ULT_SENSOR_INTERVAL_S.*at least 1"):
            PipelineSettings.from_env({"ULT_SENSOR_INTERVAL_S": value})


@pytest.mark.parametrize("value,tests", [
    (None, ()), ("", ()), ("none", ()), ("all", ("admin_writes", "roster_contention")),
    ("roster_contention", ("roster_contention",)), ("Admin_Writes", ("admin_writes",)), (" roster_contention , admin_writes ", ("admin_writes", "roster_contention")),
])
def test_write_tests_are_chosen_by_name_and_switch_the_assets_on(value, tests):
    env = {} if value is None else {"ULT_WRITE_TESTS": value}
    settings = PipelineSettings.from_env(env)
    assert settings.write_tests == tests
    ops = settings.run_config()["ops"]
    assert ops["write_results"]["config"]["enabled"] == ("admin_writes" in tests)
    assert ops["roster_contention"]["config"]["enabled"] == ("roster_contention" in tests)


def test_an_unknown_write_test_is_refused_naming_the_variable_and_the_known_ones():
    with pytest.raises(ValueError, match=r"ULT_WRITE_TESTS.*admin_writs.*known: admin_writes, roster_contention"):
        PipelineSettings.from_env({"ULT_WRITE_TESTS": "admin_writs"})


def test_the_write_test_follows_the_read_tests_profile_and_duration_at_its_own_rate():
    ops = PipelineSettings.from_env({"ULT_WRITE_TESTS": "all", "ULT_LOAD_PROFILE": "short", "ULT_LOAD_DURATION": "45s",
                                     "ULT_WRITE_RATE": "3"}).run_config()["ops"]
    assert ops["write_results"]["config"] == {"enabled": True, "load_profile": "short", "rate": 3.0, "duration": "45s"}
