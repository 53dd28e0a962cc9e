"""Every setting of a load-test run, checked before anything is deployed or wiped.

Dagster checks a run config's types when the run is launched, but each asset builds its
`Config` (and the load profile, dataset profile and gate behind it) only when its own step
starts: a bad `k6_results.config.rate` would be found after `seeded_dataset` had wiped the
target. `run_config_problems` builds them all up front; the sensor refuses to request a run
with problems, and the first assets of the run refuse to start one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import dagster as dg
import pydantic

from ult_pipeline.analysis.history import HistoryError
from ult_pipeline.loadtest.profiles import duration_seconds, get_load_profile
from ult_pipeline.seeding.profiles import get_profile


def _seeded_dataset(config: Mapping) -> None:
    from ult_pipeline.assets.seeded_dataset import SeededDatasetConfig

    c = SeededDatasetConfig(**config)
    get_profile(c.profile, c.custom_profiles)


def _k6_results(config: Mapping) -> None:
    from ult_pipeline.assets.k6_results import K6ResultsConfig

    c = K6ResultsConfig(**config)
    get_load_profile(c.load_profile).with_overrides(duration=c.duration, rate=c.rate, scenario=c.scenario,
                                                    admin_writes_weight=c.admin_writes_weight)


def _write_results(config: Mapping) -> None:
    from ult_pipeline.assets.write_tests import ADMIN_WRITES, WriteTestConfig

    c = WriteTestConfig(**config)
    get_load_profile(c.load_profile).with_overrides(scenario=ADMIN_WRITES, rate=c.rate, duration=c.duration)


def _roster_contention(config: Mapping) -> None:
    from ult_pipeline.assets.write_tests import ROSTER_CONTENTION, RosterContentionConfig

    c = RosterContentionConfig(**config)
    get_load_profile("short").with_overrides(scenario=ROSTER_CONTENTION, rate=c.rate, duration=c.duration,
                                             contention_writers=c.writers)


def _regression_comparison(config: Mapping) -> None:
    from ult_pipeline.assets.regression_comparison import RegressionConfig

    c = RegressionConfig(**config)
    c.gate().policy()
    for name in ("tolerance_pct", "matters_pct"):
        value = getattr(c, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if c.tolerance_pct > c.matters_pct:
        raise ValueError(f"tolerance_pct ({c.tolerance_pct}) must not be above matters_pct ({c.matters_pct})")
    for name in ("suspect_alpha", "trigger_alpha"):
        value = getattr(c, name)
        # 1 is allowed: "re-run every worse operation" (forcing a confirmation, as the A/B tests do).
        if not 0 < value <= 1:
            raise ValueError(f"{name} must be above 0 and at most 1, got {value}")


def _ab_confirmation(config: Mapping) -> None:
    from ult_pipeline.assets.ab_confirmation import AbConfirmationConfig

    c = AbConfirmationConfig(**config)
    duration_seconds(c.duration)


def _telemetry_gap(config: Mapping) -> None:
    from ult_pipeline.assets.telemetry_gap import TelemetryGapConfig

    c = TelemetryGapConfig(**config)
    if not 0 < c.min_coverage <= c.max_coverage:
        raise ValueError(f"coverage bounds must satisfy 0 < min_coverage <= max_coverage, got "
                         f"{c.min_coverage} and {c.max_coverage}")


CHECKS: dict[str, Callable[[Mapping], None]] = {
    "seeded_dataset": _seeded_dataset,
    "k6_results": _k6_results,
    "regression_comparison": _regression_comparison,
    "ab_confirmation": _ab_confirmation,
    "telemetry_gap": _telemetry_gap,
    "write_results": _write_results,
    "write_verdict": _regression_comparison,
    "roster_contention": _roster_contention,
}


# What each organization's data must hold for a write test's k6 journey (k6/scenarios/admin_writes.js
# NEEDS, roster_contention.js needs(): an organization with an org_admin, and per iteration or round).
ADMIN_WRITES_STUDENTS = 4


def write_test_data_problems(ops: Mapping) -> list[str]:
    """The switched-on write tests whose journeys the run's dataset profile cannot serve (no
    administrators, too few students for the contention's writers): found here, before the read test's
    wipe, not by k6 after the write test's own wipe. [] when they can run (or are off, or the dataset's
    own config is invalid: `_seeded_dataset` names that)."""
    from ult_pipeline.assets.seeded_dataset import SeededDatasetConfig
    from ult_pipeline.assets.write_tests import RosterContentionConfig, WriteTestConfig

    try:
        seeded = SeededDatasetConfig(**((ops.get("seeded_dataset") or {}).get("config") or {}))
        profile = get_profile(seeded.profile, seeded.custom_profiles)
        writes = WriteTestConfig(**((ops.get("write_results") or {}).get("config") or {}))
        contention = RosterContentionConfig(**((ops.get("roster_contention") or {}).get("config") or {}))
    except (pydantic.ValidationError, ValueError, TypeError):
        return []
    problems = []
    name = f"dataset profile {profile.name!r}"
    if (writes.enabled or contention.enabled) and profile.org_admins_per_organization < 1:
        problems.append(f"{'write_results' if writes.enabled else 'roster_contention'}: the write tests need "
                        f"organization administrators; {name} has org_admins_per_organization 0")
    if writes.enabled and profile.school_admins_per_school < 1:
        problems.append(f"write_results: admin_writes needs a school administrator; {name} has "
                        "school_admins_per_school 0")
    if writes.enabled and profile.students_per_organization < ADMIN_WRITES_STUDENTS:
        problems.append(f"write_results: admin_writes needs {ADMIN_WRITES_STUDENTS} students per organization; "
                        f"{name} has {profile.students_per_organization}")
    if contention.enabled and profile.students_per_organization < contention.writers:
        problems.append(f"roster_contention: {contention.writers} writers need as many students per organization; "
                        f"{name} has {profile.students_per_organization}")
    return problems


def _one_line(err: Exception) -> str:
    if isinstance(err, pydantic.ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def run_config_problems(run_config: Mapping | None) -> list[str]:
    """One line per asset whose config (or what it names) is invalid: ``"<asset>: <problem>"``; [] when all hold.

    Assets absent from ``run_config`` are checked with their defaults.
    """
    ops = (run_config or {}).get("ops") or {}
    problems = []
    for asset, check in CHECKS.items():
        config = (ops.get(asset) or {}).get("config") or {}
        try:
            check(config)
        except (pydantic.ValidationError, ValueError, TypeError, HistoryError) as err:
            problems.append(f"{asset}: {_one_line(err)}")
    return problems + write_test_data_problems(ops)


def require_valid_run_config(context: dg.AssetExecutionContext) -> None:
    """Raise dg.Failure naming every invalid setting of this run; called before anything is deployed or wiped."""
    problems = run_config_problems(context.run.run_config)
    if problems:
        raise dg.Failure(
            "the run's settings are invalid; nothing was deployed or wiped. Fix the run config (or the ULT_* "
            "settings the sensor reads): " + " | ".join(problems)
        )
