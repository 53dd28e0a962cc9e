"""`regression_comparison` reads the history store and judges a build only against builds measured the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from ult_pipeline.analysis.gate import NOT_COMPARABLE
from ult_pipeline.assets.ab_confirmation import final_verdict
from ult_pipeline.assets.regression_comparison import regression_comparison
from ult_pipeline.resources.target import ResultsStoreResource
from ult_pipeline_tests.analysis.history_fixtures import history as synthetic_history

T0 = datetime(2026, 11, 1, tzinfo=UTC)
FINGERPRINT = {"k6_version": "k6 v1.1.0", "scripts_hash": "sha256:" + "a" * 64, "dataset_hash": "sha256:" + "b" * 64,
               "target_version": "1.0", "load_profile": {"rate": 22, "duration": "10m"}}


def store_builds(base, builds: int, changed: dict | None = None, slow_from: int | None = None) -> list[str]:
    """`builds` synthetic builds recorded in the store under `base`; the last one with `changed` fingerprint fields."""
    store = ResultsStoreResource(base_dir=str(base)).history_store()
    frame = synthetic_history(builds, slow_op="userNode" if slow_from is not None else None, slow_from=slow_from,
                              factor=1.5)
    names = list(dict.fromkeys(frame["build"]))
    for i, name in enumerate(names):
        extra = changed if changed and i == len(names) - 1 else {}
        store.record({"build": name, "pushed_at": T0 + timedelta(hours=i), "requests": 100, "p95_ms": 9.0,
                      "error_rate": 0.0, "students": 40, "image": name, **FINGERPRINT, **extra},
                     frame[frame["build"] == name])
    return names


def compare(base, build: str) -> dict:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("builds", [build])
        result = dg.materialize([regression_comparison], partition_key=build, instance=instance,
                                resources={"results_store": ResultsStoreResource(base_dir=str(base))})
        return result.output_for_node("regression_comparison")


def test_a_build_whose_scripts_changed_is_not_comparable_and_ab_confirmation_passes_with_why(tmp_path):
    names = store_builds(tmp_path, 4, changed={"scripts_hash": "sha256:" + "c" * 64})
    out = compare(tmp_path, names[-1])
    assert out["verdict"] == NOT_COMPARABLE and out["not_comparable"].startswith("scripts_hash changed")
    assert out["needs_confirmation"] == [] and out["ab_baseline"] is None
    final = final_verdict(names[-1], pd.DataFrame(out["operations"]))
    assert final["verdict"] == NOT_COMPARABLE and not final["fails"]
    assert final["summary"].startswith("not comparable: scripts_hash changed")


def test_a_build_measured_like_its_baseline_is_judged(tmp_path):
    names = store_builds(tmp_path, 6, slow_from=5)
    out = compare(tmp_path, names[-1])
    assert out["verdict"].startswith("regressed") and "userNode" in out["needs_confirmation"]
