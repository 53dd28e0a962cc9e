"""`regression_comparison`: did this build make the service slower than the builds before it?"""

import math

import dagster as dg
import pandas as pd
from pydantic import Field

from ult_pipeline.analysis.detector import confirm_paired
from ult_pipeline.analysis.history import ALL_OPERATIONS, HistoryError
from ult_pipeline.analysis.pipeline_history import load_history
from ult_pipeline.analysis.regression import REGRESSED, UNCHANGED, BaselinePolicy, analyze, operation_verdicts, overall
from ult_pipeline.assets.confirmation import run_ab_confirmation
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.aws import AwsResource
from ult_pipeline.resources.deployer import TargetDeployerResource
from ult_pipeline.resources.k6 import K6RunnerResource
from ult_pipeline.resources.target import ResultsStoreResource, TargetApiResource

NO_REGRESSION = "no_regression"


class RegressionConfig(dg.Config):
    baseline: str = Field(default="last:20", description="last:N, pinned:BUILD or release[:REGEX]")
    tolerance_pct: float = Field(default=3.0, description="changes smaller than this are 'unchanged'")
    normalize: bool = Field(default=True, description="compare operations relative to the build's typical latency")
    confirm: bool = Field(default=True, description="re-run A,B,A,B short tests to confirm a suspected regression")
    confirm_pairs: int = 2
    confirm_duration: str = "60s"


def verdict_table(verdicts: pd.DataFrame) -> dg.TableMetadataValue:
    columns = ["operation", "verdict", "confidence", "p95_change_pct", "p95_ci_low_pct", "p95_ci_high_pct",
               "p95_mdc_pct", "noise_cv_pct", "regressed_metrics"]
    records = []
    for row in verdicts[columns].to_dict(orient="records"):
        records.append(dg.TableRecord({
            k: (round(float(v), 2) if isinstance(v, float) and math.isfinite(v)
                else ("" if v is None or isinstance(v, float) else v))
            for k, v in row.items()
        }))
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "float" if c.endswith("pct") else "string") for c in columns])
    return dg.MetadataValue.table(records=records, schema=schema)


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    pool="load_test_target",
    ins={"seeded_dataset": dg.AssetIn()},
    # After telemetry_gap: confirmation runs redeploy the target, which resets its counters.
    deps=["k6_results", "telemetry_gap"],
    check_specs=[dg.AssetCheckSpec(NO_REGRESSION, asset="regression_comparison",
                                   description="error on a confirmed regression, warning on a suspected one")],
    description="Compares the build with the complete builds before it, per operation and metric (p50, p95, p99, "
    "error rate, throughput): change with a confidence interval, change points, verdict, minimum detectable change.",
)
def regression_comparison(
    context: dg.AssetExecutionContext,
    config: RegressionConfig,
    seeded_dataset: dict,
    target_api: TargetApiResource,
    target_deployer: TargetDeployerResource,
    k6_runner: K6RunnerResource,
    results_store: ResultsStoreResource,
    aws: AwsResource,
):
    history, _ = load_history(context.instance)
    build = context.partition_key
    if build not in set(history["build"]):
        raise dg.Failure(f"no complete k6_results for build {build!r}: nothing to compare")
    try:
        policy = BaselinePolicy.parse(config.baseline)
        table = analyze(history, build, baseline=policy, tolerance_pct=config.tolerance_pct, normalize=config.normalize)
    except HistoryError as err:
        raise dg.Failure(str(err)) from None
    verdicts = operation_verdicts(table)
    confirmation = "not needed"
    suspected = verdicts[(verdicts["verdict"] == REGRESSED) & (verdicts["confidence"] == "suspected")
                         & (verdicts["operation"] != ALL_OPERATIONS)]
    if len(suspected) and config.confirm:
        runs = run_ab_confirmation(
            context, history, build, policy, seeded_dataset, target_api, target_deployer, k6_runner, results_store,
            aws, pairs=config.confirm_pairs, duration=config.confirm_duration,
        )
        notes = []
        for index, row in suspected.iterrows():
            result = confirm_paired(runs["candidate"][row["operation"]], runs["baseline"][row["operation"]],
                                    tolerance_pct=config.tolerance_pct)
            if result.confirmed:
                verdicts.loc[index, "confidence"] = "confirmed"
                notes.append(f"{row['operation']}: confirmed by A/B ({result.change_pct:+.1f} %, p={result.p_value:.3f})")
            else:
                verdicts.loc[index, ["verdict", "confidence"]] = [UNCHANGED, "cleared by A/B"]
                notes.append(f"{row['operation']}: cleared by A/B ({result.change_pct:+.1f} %, p={result.p_value:.3f})")
        confirmation = "; ".join(notes)
    elif len(suspected):
        confirmation = "suspected; confirmation runs are switched off"
    build_verdict = overall(verdicts)
    # The build-wide `__all__` row is shown, not counted (see regression.overall).
    counted = verdicts[verdicts["operation"] != ALL_OPERATIONS]
    regressed_ops = list(counted.loc[counted["verdict"] == REGRESSED, "operation"])
    yield dg.Output(
        {"verdict": build_verdict, "operations": verdicts.to_dict(orient="records"),
         "metrics": table.to_dict(orient="records")},
        metadata={
            "verdict": build_verdict,
            "regressed_operations": ", ".join(regressed_ops) or "none",
            "confirmation": confirmation,
            "baseline": config.baseline,
            "builds_compared": int(table["builds_compared"].max()) if len(table) else 0,
            "operations": verdict_table(verdicts),
        },
    )
    confirmed = counted[(counted["verdict"] == REGRESSED) & (counted["confidence"] == "confirmed")]
    suspected_now = counted[(counted["verdict"] == REGRESSED) & (counted["confidence"] != "confirmed")]
    yield dg.AssetCheckResult(
        check_name=NO_REGRESSION,
        passed=not len(confirmed) and not len(suspected_now),
        severity=dg.AssetCheckSeverity.ERROR if len(confirmed) else dg.AssetCheckSeverity.WARN,
        metadata={"verdict": build_verdict, "operations": verdict_table(verdicts)},
        description=f"{build_verdict}: {', '.join(regressed_ops) or 'no operation'}",
    )
