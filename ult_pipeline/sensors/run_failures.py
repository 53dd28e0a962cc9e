"""Why a run failed, read from its event log; and `skipped_checks_sensor`, which says so on the checks
the failed run never got to.

When a build's run fails (a step raised, or a blocking check such as
`k6_results.no_dropped_iterations` failed and stopped everything downstream), the checks planned for
the later assets (`ab_confirmation.no_regression`, ...) never evaluate, and the UI shows them as
"Execution failed": a reader takes that for "regression found". The sensor records, for each planned
check of the failed run that did not evaluate, an evaluation that failed with WARN severity whose
description starts with "skipped: " and says why (`skipped: check k6_results.no_dropped_iterations
failed: ...` or `skipped: seeded_dataset failed: <first line of its error>`) in that run, with its build.

The reading functions (`step_failure_reason`, `failed_check_reasons`, `run_problems`) are pure reads
of the event log, shared with `ult demo`'s build lines.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dagster as dg

from ult_pipeline.secrets import MASK, scrub_db_message
from ult_pipeline.settings import VARIABLES, setting

REASON_CHARS = 300
SKIPPED = "skipped"
# Set on a failed run once its skipped checks are recorded: a second look (a reset cursor, a
# re-evaluated tick) records nothing twice.
RECORDED_TAG = "ult/skipped_checks_recorded"
_PARTITION_TAG = "dagster/partition"
# Dagster's wrapper of an error raised in an op (its cause is the user's error) and its error for a
# failed blocking check (the failed checks are in the run's ASSET_CHECK_EVALUATION events).
_STEP_ERROR, _BLOCKING_CHECK_ERROR = "DagsterExecutionStepExecutionError", "DagsterAssetCheckFailedError"
# User info of a URL (`scheme://user:password@`) and libpq's `password=...`: hidden in any text shown.
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"((?:ssl)?password\s*=\s*)\S+", re.IGNORECASE)


def scrub(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` without the values of the pipeline's secret settings (from `env`, default the process's),
    the target DSN's parts that are secret, URL passwords and `password=` values."""
    env = os.environ if env is None else env
    for variable in VARIABLES.values():
        value = setting(env, variable.name) if variable.secret else None
        if value and len(value) >= 4:  # a 1-3 character "secret" would mask ordinary words
            text = text.replace(value, MASK)
    dsn = setting(env, "ULT_TARGET_DSN")
    if dsn:
        text = scrub_db_message(text, dsn, hide_quoted=False)
    text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(rf"\1{MASK}", text)


def short(text: str | None) -> str:
    """The first non-empty line of `text`, at most `REASON_CHARS` characters."""
    line = next((part.strip() for part in (text or "").splitlines() if part.strip()), "")
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS - 3] + "..."


def _user_error(event: dg.DagsterEvent):
    error = event.step_failure_data.error
    if error is not None and error.cls_name == _STEP_ERROR and error.cause is not None:
        error = error.cause
    return error


# A step stopped by its failed blocking check: the checks' own findings say why.
_BLOCKED = "stopped by its failed blocking check"


def step_failure_reason(event: dg.DagsterEvent) -> str:
    """`STEP failed: first line of its error` for a STEP_FAILURE event.

    Dagster wraps an error raised in an op's code (DagsterExecutionStepExecutionError, "Error
    occurred while executing op ..."); the user's error is its cause, and that is the reason. A
    failed blocking check's error names the check, not why: `STEP stopped by its failed blocking
    check: ASSET: CHECK`.
    """
    error = _user_error(event)
    if error is None:
        return f"{event.step_key} failed: no error recorded"
    if error.cls_name == _BLOCKING_CHECK_ERROR:
        # "1 blocking asset check failed with ERROR severity:\nk6_results: no_dropped_iterations"
        names = ", ".join(line.strip() for line in error.message.splitlines()[1:] if line.strip())
        return f"{event.step_key} {_BLOCKED}: {names or '?'}"
    return f"{event.step_key} failed: {short(error.message)}"


def is_skipped(evaluation: dg.AssetCheckEvaluation) -> bool:
    """Recorded by `skipped_checks_sensor` for a check its run never got to (not a finding on its asset)."""
    status = (evaluation.metadata or {}).get("status")
    return getattr(status, "value", status) == SKIPPED and (evaluation.description or "").startswith(f"{SKIPPED}: ")


def _metadata_text(metadata: Mapping) -> str:
    """`key value, ...` of a check's metadata (numbers, text, flags, small JSON), for a check without a description."""
    shown = []
    for key, entry in (metadata or {}).items():
        value = getattr(entry, "value", entry)
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, default=str, separators=(",", ":"))
        elif not isinstance(value, (int, str, bool)):
            continue
        shown.append(f"{key} {value}")
    return ", ".join(shown)


def failed_check_reasons(evaluations: Iterable[dg.EventLogEntry], skip: frozenset[str] = frozenset(),
                         blocking_only: bool = False) -> list[str]:
    """`check ASSET.CHECK: description` of each failed check among ASSET_CHECK_EVALUATION records
    (only blocking ones with `blocking_only`), leaving out check names in `skip` and checks marked
    skipped (`is_skipped`); without a description, the check's metadata (e.g. `dropped_iterations 12,
    achieved_rate_per_s 19.3`)."""
    reasons = []
    for record in evaluations:
        check = record.dagster_event.asset_check_evaluation_data if record.dagster_event else None
        if check is None or check.passed or check.check_name in skip or (blocking_only and not check.blocking):
            continue
        if is_skipped(check):  # recorded by skipped_checks_sensor: a consequence of the failure, not a cause
            continue
        why = check.description or _metadata_text(check.metadata) or "failed"
        reasons.append(f"check {check.asset_key.to_user_string()}.{check.check_name}: {short(why)}")
    return reasons


def run_problems(instance: dg.DagsterInstance, run: dg.DagsterRun, skip_checks: frozenset[str] = frozenset()
                 ) -> list[str]:
    """Why a run failed (each failed step and its error's first line, or the run's own failure
    message), then its failed asset checks other than `skip_checks`; [] for a clean run.

    A step stopped by a failed blocking check (e.g. k6_results.no_dropped_iterations) lists the
    check's own finding; `skip_checks` never hides such a check, it is the reason of the failure.
    """
    steps: list[str] = []
    if run.status == dg.DagsterRunStatus.FAILURE:
        steps = [step_failure_reason(r.dagster_event)
                 for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
                 if r.dagster_event is not None]
        if not steps:  # e.g. the run worker died: only the run's failure says why
            steps = [f"run failed: {short(r.dagster_event.message or r.user_message)}"
                     for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
                     if r.dagster_event is not None][:1]
    checks = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    blocked = [step for step in steps if _BLOCKED in step]
    failed_checks = failed_check_reasons(checks, frozenset() if blocked else skip_checks)
    if blocked and failed_checks:  # the checks' own findings say it better than "stopped by ..."
        steps = [step for step in steps if _BLOCKED not in step]
    return steps + failed_checks


def why_run_stopped(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """The first cause of a failed run, one line: a failed blocking check (`check k6_results.
    no_dropped_iterations failed: ...`), else a failed step (`seeded_dataset failed: ...`), else the
    run's own failure message."""
    blocking = failed_check_reasons(
        instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION), blocking_only=True)
    if blocking:
        check, _, description = blocking[0].partition(": ")
        return f"{check} failed" + (f": {description}" if description and description != "failed" else "")
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        if event is not None:
            error = _user_error(event)
            # A blocking check's failure without its evaluation in the log: the error names the check.
            if error is not None and error.cls_name == _BLOCKING_CHECK_ERROR:
                return f"a blocking check failed ({' '.join(error.message.split()[-1:])})"
            return step_failure_reason(event)
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
        if record.dagster_event is not None:
            return f"run failed: {short(record.dagster_event.message or record.user_message)}"
    return f"run {run.status.value.lower()}"


@dataclass(frozen=True)
class UnevaluatedCheck:
    key: dg.AssetCheckKey
    partition: str | None


def unevaluated_checks(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[UnevaluatedCheck]:
    """The checks planned for `run` that it never evaluated, in the order they were planned, with the
    run's partition (None for an unpartitioned run)."""
    partition = run.tags.get(_PARTITION_TAG)
    evaluated = {(r.dagster_event.asset_check_evaluation_data.asset_key,
                  r.dagster_event.asset_check_evaluation_data.check_name)
                 for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
                 if r.dagster_event is not None}
    planned: list[UnevaluatedCheck] = []
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED):
        if record.dagster_event is None:
            continue
        data = record.dagster_event.asset_check_planned_data
        check = UnevaluatedCheck(dg.AssetCheckKey(data.asset_key, data.check_name), partition)
        if (data.asset_key, data.check_name) not in evaluated and check not in planned:
            planned.append(check)
    return planned


def skipped_evaluation(check: UnevaluatedCheck, reason: str, run_id: str) -> dg.AssetCheckEvaluation:
    """A check the run never got to: failed with WARN (not an ERROR: nothing was found wrong with its
    asset), described as `skipped: <reason>`; the build (partition) in its metadata.

    The evaluation's own `partition` stays None, as for the checks' evaluations in a run: Dagster plans
    these checks without a partition, and only an evaluation without one replaces the planned row.
    """
    return dg.AssetCheckEvaluation(
        asset_key=check.key.asset_key, check_name=check.key.name, passed=False,
        severity=dg.AssetCheckSeverity.WARN, description=f"{SKIPPED}: {reason}",
        metadata={"status": SKIPPED, "reason": reason, **({"build": check.partition} if check.partition else {}),
                  "run_id": run_id},
    )


def record_skipped_checks(instance: dg.DagsterInstance, run: dg.DagsterRun,
                          env: Mapping[str, str] | None = None) -> list[dg.AssetCheckEvaluation]:
    """Records `skipped: <why the run stopped>` for each check the failed `run` planned and never
    evaluated; returns what it recorded. Nothing for a run that did not fail, or was handled before."""
    run = instance.get_run_by_id(run.run_id) or run  # its tags as stored now
    if run.status != dg.DagsterRunStatus.FAILURE or run.tags.get(RECORDED_TAG):
        return []
    checks = unevaluated_checks(instance, run)
    if not checks:
        return []
    reason = scrub(why_run_stopped(instance, run), env)
    evaluations = [skipped_evaluation(check, reason, run.run_id) for check in checks]
    for evaluation in evaluations:
        # Into the failed run's own event log: Dagster stores it on the check's planned row of that run
        # (the row the UI showed as "Execution failed"), as if the run had evaluated it. A runless
        # evaluation (`report_runless_asset_event`) would add a row of its own instead, and Dagster 1.13
        # refuses a second runless row for the same check and partition (a unique index), so a build
        # failing twice would keep "Execution failed" the second time.
        instance.report_dagster_event(
            dg.DagsterEvent(event_type_value=dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
                            job_name=run.job_name, event_specific_data=evaluation,
                            message=evaluation.description),
            run_id=run.run_id, log_level=logging.WARNING)
    instance.add_run_tags(run.run_id, {RECORDED_TAG: str(len(evaluations))})
    return evaluations


@dg.run_failure_sensor(
    name="skipped_checks_sensor", default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=5,
    description="After a failed run, marks each check it never evaluated 'skipped: <why the run stopped>' "
    "(a warning), instead of the UI's 'Execution failed'.",
)
def skipped_checks_sensor(context: dg.RunFailureSensorContext):
    recorded = record_skipped_checks(context.instance, context.dagster_run)
    if recorded:
        context.log.info(f"run {context.dagster_run.run_id}: {len(recorded)} checks marked "
                         f"{recorded[0].description}")
