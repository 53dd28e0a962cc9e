"""Refresh the trend report after every finished load test."""

import dagster as dg

from ult_pipeline.jobs import load_test_job, trend_report_job


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[load_test_job], request_job=trend_report_job,
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=5,
)
def trend_report_sensor(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=f"trend-after-{context.dagster_run.run_id}")
