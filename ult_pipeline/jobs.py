"""The load-test job: every per-build asset, one partition per image."""

import dagster as dg

load_test_job = dg.define_asset_job(
    "load_test_job",
    selection=dg.AssetSelection.groups("load_test"),
    description="Deploy the build's image, wipe and seed, run k6, then compare and export.",
)

trend_report_job = dg.define_asset_job(
    "trend_report_job", selection=dg.AssetSelection.groups("trends"),
    description="Rebuild the trend report across every build.",
)
