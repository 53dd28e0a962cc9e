"""Make the fake New Relic's ``fake_newrelic`` fixture available to the tests in this package."""

from ult_pipeline_tests.newrelic.fake_newrelic import fake_newrelic  # noqa: F401
