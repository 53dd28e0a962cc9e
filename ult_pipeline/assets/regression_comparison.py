"""`regression_comparison`: is this build slower than the builds before it? The statistics, no re-runs.

The build's final verdict, after any A/B re-runs, is `ab_confirmation`'s.
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from ult_pipeline.analysis.gate import NOT_COMPARABLE, judge, not_comparable_operations, representative_baseline
from ult_pipeline.analysis.history import ALL_OPERATIONS, HistoryError
from ult_pipeline.analysis.history_store import HistoryStore, comparable, restrict
from ult_pipeline.analysis.regression import DEFAULT_GATE, MIN_HISTORY, REGRESSED, GateConfig
from ult_pipeline.assets.presentation import build_entries, verdict_table
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.target import ResultsStoreResource


class RegressionConfig(dg.Config):
    """The gate's settings; defaults are `regression.DEFAULT_GATE`, the same as `ult analyze`'s."""

    baseline: str = Field(default=DEFAULT_GATE.baseline, description="last:N, pinned:BUILD or release[:REGEX]")
    tolerance_pct: float = Field(default=DEFAULT_GATE.tolerance_pct, description="smaller changes are 'unchanged'")
    matters_pct: float = Field(default=DEFAULT_GATE.matters_pct,
                               description="an operation that could not see a change this large is 'inconclusive'")
    normalize: bool = Field(default=DEFAULT_GATE.normalize,
                            description="divide out the build's host-wide factor where enough operations measure it")
    suspect_alpha: float = Field(default=DEFAULT_GATE.suspect_alpha, description="family-wise alpha of 'suspected'")
    trigger_alpha: float = Field(default=DEFAULT_GATE.trigger_alpha,
                                 description="family-wise alpha below which a worse operation is re-run A/B")

    def gate(self) -> GateConfig:
        return GateConfig(baseline=self.baseline, tolerance_pct=self.tolerance_pct, matters_pct=self.matters_pct,
                          normalize=self.normalize, suspect_alpha=self.suspect_alpha, trigger_alpha=self.trigger_alpha)


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    pool="load_test_target",
    deps=["k6_results", "telemetry_gap"],
    description="Compares the build with the complete builds before it, per operation and metric (p50, p95, p99, "
    "error rate, throughput): change with a confidence interval, change points, verdict, minimum detectable change, "
    "and which operations an A/B re-run should confirm.",
)
def regression_comparison(context: dg.AssetExecutionContext, config: RegressionConfig,
                          results_store: ResultsStoreResource):
    build = context.partition_key
    gate = config.gate()
    outcome = compare_build(results_store.history_store(), build, gate)
    if isinstance(outcome, str):
        raise dg.Failure(outcome)
    return dg.Output(outcome, metadata=comparison_metadata(outcome, gate, context.run.tags))


def _not_comparable(build: str, history: pd.DataFrame, why: str, gate: GateConfig) -> dict:
    operations = sorted(set(history.loc[history["build"] == build, "operation"]))
    verdicts = not_comparable_operations(operations, why)
    return {"build": build, "verdict": NOT_COMPARABLE, "not_comparable": why,
            "operations": verdicts.to_dict(orient="records"), "metrics": [], "needs_confirmation": [],
            "ab_baseline": None, "gate": gate.__dict__, "builds_compared": 0, "normalized": False}


def compare_build(store: HistoryStore, build: str, gate: GateConfig) -> dict | str:
    """The build against the earlier builds measured the same way (same fingerprint: data set, k6
    scripts and version, load profile), as the asset's output; a message (str) when the build
    cannot be compared at all. When earlier builds exist but too few (`MIN_HISTORY`) were measured
    like this build, the verdict is "not comparable" and says which fingerprint fields changed."""
    history, _ = store.load()
    if build not in set(history["build"]):
        return f"no complete k6_results for build {build!r} in the history store ({store.folder}): nothing to compare"
    fingerprints = comparable(store.summaries(), build)
    why = fingerprints.reason(MIN_HISTORY)
    if why is not None:
        return _not_comparable(build, history, why, gate)
    history = restrict(history, fingerprints)
    try:
        judgement = judge(history, build, gate)
    except HistoryError as err:
        if fingerprints.differing:  # e.g. a pinned baseline measured differently
            return _not_comparable(build, history, f"{', '.join(fingerprints.fields)} changed ({err})", gate)
        return str(err)
    table, verdicts = judgement.table, judgement.operations
    to_confirm = judgement.needs_confirmation()
    # The image an A/B re-run compares with, chosen here where the history is already loaded.
    ab_baseline = representative_baseline(history, build, to_confirm, config=gate) if to_confirm else None
    return {"build": build, "verdict": judgement.verdict, "operations": verdicts.to_dict(orient="records"),
            "metrics": table.to_dict(orient="records"), "needs_confirmation": to_confirm,
            "ab_baseline": ab_baseline, "gate": gate.__dict__,
            "builds_compared": int(table["builds_compared"].max()) if len(table) else 0,
            "normalized": bool(table["relative"].any()) if len(table) else False,
            "excluded_builds": sorted(fingerprints.differing)}


def comparison_metadata(outcome: dict, gate: GateConfig, run_tags: dict[str, str] | None = None) -> dict:
    """What the UI shows of a comparison, in reading order: the verdict, the regressed operations, the
    build, the operations worth a re-run, the per-operation table, then how it was compared (display only: nothing reads it back)."""
    operations = pd.DataFrame(outcome["operations"])
    regressed = operations.loc[operations["verdict"] == REGRESSED, "operation"] if len(operations) else []
    metadata = {
        "verdict": outcome["verdict"],
        "regressed_operations": ", ".join(o for o in regressed if o != ALL_OPERATIONS) or "none",
        **build_entries(outcome["build"], run_tags),
        "needs_confirmation": ", ".join(outcome["needs_confirmation"]) or "none",
    }
    if outcome.get("not_comparable"):
        metadata["not_comparable"] = outcome["not_comparable"]
    metadata.update({
        "operations": verdict_table(operations, outcome.get("metrics"), gate),
        "baseline": gate.baseline,
        "builds_compared": outcome["builds_compared"],
        "normalized": outcome["normalized"],
    })
    if outcome.get("excluded_builds"):
        metadata["excluded_builds"] = ", ".join(outcome["excluded_builds"])
    return metadata
