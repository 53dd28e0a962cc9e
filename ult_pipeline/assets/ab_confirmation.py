"""`ab_confirmation`: the build's final verdict, after re-running a suspected regression A,B,A,B.

When `regression_comparison` finds an operation worse (see `Judgement.needs_confirmation`), the
baseline image (A: a typical baseline build, `gate.representative_baseline`, chosen there) and the
candidate (B) are deployed and load-tested in turn on the same environment, pair after pair.
Interleaving on one host at nearly the same time cancels most of the environment's run-to-run
noise; `analysis.ab.confirm_paired` then confirms or clears each operation. Otherwise the asset
materializes at once, "not needed" (or "nothing to confirm" for a build measured differently from its
baseline builds: "not comparable", never judged). The `no_regression` check judges the final verdict with the
same rule as `ult analyze` (`gate.decide`).
"""

import json
import math
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from ult_pipeline.analysis.ab import AbRun, Confirmation, PairConfig, confirm_operations
from ult_pipeline.analysis.gate import NOT_COMPARABLE, GateDecision, apply_confirmation, decide
from ult_pipeline.analysis.history import ALL_OPERATIONS
from ult_pipeline.analysis.regression import LATENCY, GateConfig, inconclusive_detail
from ult_pipeline.analysis.sampling import sampling_errors
from ult_pipeline.assets.presentation import build_entries, trend_report_link, verdict_table
from ult_pipeline.assets.target_deployment import build_of
from ult_pipeline.loadtest.profiles import LoadProfile
from ult_pipeline.loadtest.run import json_safe, run_load_test
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.deployer import TargetDeployerResource
from ult_pipeline.resources.k6 import K6RunnerResource
from ult_pipeline.resources.target import ResultsStoreResource, TargetApiResource
from ult_pipeline.settings import PipelineSettings

NO_REGRESSION = "no_regression"
VERDICT_FILE = "verdict.json"
_DEFAULTS = PairConfig()


class AbConfirmationConfig(dg.Config):
    confirm: bool = Field(default=True, description="re-run A,B,A,B to confirm or clear a suspected regression")
    pairs: int = Field(default=_DEFAULTS.pairs, ge=1, description="A,B pairs per confirmation")
    duration: str = Field(default=_DEFAULTS.duration, description="k6 duration of each A and B run")
    alpha: float = Field(default=_DEFAULTS.alpha, gt=0, lt=1, description="one-sided p that confirms")
    pair_noise: float = Field(default=_DEFAULTS.pair_noise, gt=0,
                              description="prior pair-to-pair sd of a log difference (bench.confirmation)")
    tolerance_pct: float | None = Field(default=None, ge=0,
                                        description="smallest confirmed change, %; default: the gate's tolerance")

    def pair_config(self, gate_tolerance_pct: float) -> PairConfig:
        tolerance = gate_tolerance_pct if self.tolerance_pct is None else self.tolerance_pct
        return PairConfig(pairs=self.pairs, duration=self.duration, alpha=self.alpha, tolerance_pct=tolerance,
                          pair_noise=self.pair_noise, prior_df=_DEFAULTS.prior_df)


def metric_to_confirm(metrics: list[dict], operations: list[str]) -> dict[str, str]:
    """operation -> the latency metric that made it worth re-running (the smallest adjusted p).

    Operations worse on their error rate only are left out: the re-runs compare latencies.
    """
    table = pd.DataFrame(metrics)
    chosen = {}
    for operation in operations:
        rows = table[(table["operation"] == operation) & table["trigger"] & table["metric"].isin(LATENCY)]
        if len(rows):
            chosen[operation] = str(rows.sort_values(["p_adjusted", "metric"]).iloc[0]["metric"])
    return chosen


def ab_run(pair: int, role: str, operations: pd.DataFrame, requests_path: Path) -> AbRun:
    """An AbRun from one run's per-operation table and raw samples (within-run errors as in the main comparison)."""
    ops = operations[operations["operation"] != ALL_OPERATIONS].set_index("operation")
    key = f"{pair}-{role}"
    frame = pd.DataFrame([{"build": key, "operation": op, "metric": m, "value": float(ops.loc[op, m]),
                           "samples_path": str(requests_path)} for op in ops.index for m in LATENCY])
    errors = sampling_errors(frame, [key])
    values = {m: {str(op): float(ops.loc[op, m]) for op in ops.index} for m in LATENCY}
    log_se = {m: {op: errors[(key, op, m)] / v for op, v in values[m].items()
                  if (key, op, m) in errors and v > 0 and math.isfinite(v)} for m in LATENCY}
    return AbRun(pair, role, values, log_se)


def final_verdict(build: str, operations: pd.DataFrame, confirmation: str = "not needed",
                  ab_baseline: str | None = None, ab_runs: list[dict] | None = None,
                  ab_results: dict[str, Confirmation] | None = None, gate: GateConfig | None = None) -> dict:
    """The build's final verdict as stored (`verdict.json`) and passed on: verdict, summary, per-operation
    rows (change points included), and what the A/B re-runs did."""
    decision = decide(operations, gate)
    return {
        "build": build, "verdict": decision.verdict, "summary": decision.summary, "fails": decision.fails,
        "regressed_operations": ", ".join(decision.regressed) or "none",
        "inconclusive": inconclusive_detail(operations) or "none", "confirmation": confirmation, "ab_baseline": ab_baseline, "operations": operations.to_dict(orient="records"),
        "ab_runs": ab_runs or [], "ab_results": {op: r.__dict__ for op, r in (ab_results or {}).items()},
    }


def store_verdict(folder: Path, final: dict, name: str = VERDICT_FILE) -> Path:
    """Writes `final` as strict JSON to folder/verdict.json (or folder/`name`), where the trend report reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(json_safe(final), indent=2, default=str, allow_nan=False))
    return path


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    pool="load_test_target",
    ins={"regression_comparison": dg.AssetIn(), "seeded_dataset": dg.AssetIn(), "k6_results": dg.AssetIn()},
    check_specs=[dg.AssetCheckSpec(NO_REGRESSION, asset="ab_confirmation",
                                   description="error on a confirmed regression, warning on a suspected one or an "
                                   "inconclusive operation (the same rule as `ult analyze`)")],
    description="The build's final verdict: a suspected regression re-run A,B,A,B against a typical baseline build "
    "and confirmed or cleared; 'not needed' when nothing was suspected. Every A/B run is recorded.",
)
def ab_confirmation(
    context: dg.AssetExecutionContext,
    config: AbConfirmationConfig,
    regression_comparison: dict,
    seeded_dataset: dict,
    k6_results: dict,
    target_api: TargetApiResource,
    target_deployer: TargetDeployerResource,
    k6_runner: K6RunnerResource,
    results_store: ResultsStoreResource,
    aws: AwsResource,
):
    build = context.partition_key
    gate = GateConfig(**regression_comparison["gate"])
    operations = pd.DataFrame(regression_comparison["operations"])
    metric_of = metric_to_confirm(regression_comparison["metrics"], regression_comparison["needs_confirmation"])
    folder = results_store.partition_dir(build)
    runs_table: list[dict] = []
    results = {}
    baseline_build = None
    if regression_comparison.get("not_comparable"):
        status = f"nothing to confirm: {NOT_COMPARABLE}"
    elif not regression_comparison["needs_confirmation"]:
        status = "not needed"
    elif not metric_of:
        status = "not re-run: only error rates were worse"
    elif not config.confirm:
        status = f"switched off ({', '.join(metric_of)} worth a re-run)"
    else:
        baseline_build = regression_comparison["ab_baseline"]
        # The images as the run's tags (the candidate's, set by the sensor) or ECR (by partition key) name them.
        repository = PipelineSettings.from_env().ecr_repository
        images = {role: build_of(key, context.run.tags, aws, repository)
                  for role, key in (("baseline", baseline_build), ("candidate", build))}
        profile = LoadProfile(**k6_results["fingerprint"]["load_profile"]).with_overrides(duration=config.duration)
        runs = []
        for pair in range(config.pairs):
            for role in ("baseline", "candidate"):  # ends on the candidate: the environment stays on this build
                image = images[role]
                context.log.info(f"A/B pair {pair + 1}/{config.pairs}: {role} {image.tag} for {', '.join(metric_of)}")
                target_deployer.deploy(image)
                result = run_load_test(
                    runner=k6_runner.runner(), target_url=target_api.url,
                    identities_path=seeded_dataset["identities_path"], profile=profile,
                    out_dir=folder / "ab" / f"{pair}-{role}", dataset_hash=seeded_dataset["dataset_hash"],
                    image=image.tag, tags={"build": build, "confirmation": role}, log=context.log.info,
                )
                if result.interrupted:
                    raise dg.Failure(f"A/B run {pair + 1} ({role}) was interrupted; its partial results are in "
                                     f"{folder / 'ab'}")
                runs.append(ab_run(pair, role, result.operations, result.ingested.requests_path))
                for op in metric_of:
                    runs_table.append({"pair": pair + 1, "role": role, "image": image.tag, "operation": op,
                                       "metric": metric_of[op], "value_ms": runs[-1].values[metric_of[op]].get(op),
                                       "samples": str(result.ingested.requests_path)})
        results = confirm_operations(runs, metric_of, config.pair_config(gate.tolerance_pct))
        operations = apply_confirmation(operations, results, gate)
        status = "; ".join(
            f"{op}: {'confirmed' if r.confirmed else 'cleared'} by A/B on {metric_of[op]} "
            f"({r.change_pct:+.1f} %, p={r.p_value:.2g}, {r.pairs} pairs vs {baseline_build})"
            for op, r in results.items())
    decision = decide(operations, gate)
    final = final_verdict(build, operations, status, baseline_build, runs_table, results, gate)
    store_verdict(folder, final)
    metadata = ab_metadata(final, operations, regression_comparison.get("metrics"), gate, context.run.tags,
                           trend_report_link(results_store))
    if runs_table:
        metadata["ab_runs"] = dg.MetadataValue.table(
            records=[dg.TableRecord({k: ("" if v is None else (round(v, 2) if k == "value_ms" else v))
                                     for k, v in row.items()}) for row in runs_table],
            schema=dg.TableSchema(columns=[dg.TableColumn(c, "float" if c == "value_ms" else
                                                          ("int" if c == "pair" else "string"))
                                           for c in runs_table[0]]))
    yield dg.Output(final, metadata=metadata)
    yield no_regression_result(decision)


def ab_metadata(final: dict, operations: pd.DataFrame, metrics: list[dict] | None, gate: GateConfig,
                run_tags: dict[str, str] | None = None, links: dict | None = None) -> dict:
    """The build's final verdict page, in reading order: the verdict, the regressed operations, the
    build, the summary, `links` (the trend report), then the per-operation table (display only:
    nothing reads it back)."""
    return {
        "verdict": final["verdict"],
        "regressed_operations": final["regressed_operations"],
        **build_entries(final["build"], run_tags),
        "summary": final["summary"],
        "inconclusive": final["inconclusive"],
        "confirmation": final["confirmation"],
        **(links or {}),
        "operations": verdict_table(operations, metrics, gate),
    }


def no_regression_result(decision: GateDecision, check_name: str = NO_REGRESSION) -> dg.AssetCheckResult:
    """The gate's outcome as the `no_regression` check (or the write test's, `check_name`): ERROR on a
    confirmed regression, WARN on a suspected one or an inconclusive operation, passed otherwise; the
    summary is its description."""
    return dg.AssetCheckResult(
        check_name=check_name, passed=not (decision.fails or decision.warns),
        severity=dg.AssetCheckSeverity.ERROR if decision.fails else dg.AssetCheckSeverity.WARN,
        metadata={"verdict": decision.verdict, "summary": decision.summary},
        description=decision.summary,
    )
