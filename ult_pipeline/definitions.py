"""Assembles the code location; every piece is defined in its own module."""

import os

import dagster as dg

from ult_pipeline.assets.ab_confirmation import ab_confirmation
from ult_pipeline.assets.k6_results import k6_results
from ult_pipeline.assets.newrelic_export import newrelic_export
from ult_pipeline.assets.regression_comparison import regression_comparison
from ult_pipeline.assets.seeded_dataset import seeded_dataset
from ult_pipeline.assets.target_deployment import target_deployment
from ult_pipeline.assets.telemetry_gap import telemetry_gap
from ult_pipeline.assets.trend_report import trend_report
from ult_pipeline.assets.write_tests import roster_contention, write_results, write_verdict
from ult_pipeline.jobs import load_test_job, trend_report_job
from ult_pipeline.resources.environment import resources_from_env
from ult_pipeline.sensors.ecr_image_sensor import build_ecr_image_sensor
from ult_pipeline.sensors.run_failures import skipped_checks_sensor
from ult_pipeline.sensors.trend_report_sensor import trend_report_sensor
from ult_pipeline.settings import sensor_interval_s


@dg.definitions
def defs() -> dg.Definitions:
    # The environment is read when the code location loads, not at import.
    env = dict(os.environ)
    return dg.Definitions(
        assets=[target_deployment, seeded_dataset, k6_results, telemetry_gap, regression_comparison, ab_confirmation,
                newrelic_export, write_results, write_verdict, roster_contention, trend_report],
        jobs=[load_test_job, trend_report_job],
        sensors=[build_ecr_image_sensor(sensor_interval_s(env)), trend_report_sensor,
                 skipped_checks_sensor],
        resources=resources_from_env(env),
    )
