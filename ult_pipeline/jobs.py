"""The load-test job: every per-build asset, one partition per image.

Both jobs run every step in the run worker's own process (`in_process_executor`): the steps run
one after another anyway (each needs the previous one's output, and the pool allows one heavy
thing at a time), and a process per step cost 8 to 17 s per step on two busy cores (measured by
`ult_pipeline_tests.bench.build_loop`: about 70 to 90 s of every build). A stop still reaches k6:
Dagster interrupts the step's code in the run worker, and the k6 runner stops k6 and keeps its
partial results.
"""

import dagster as dg

load_test_job = dg.define_asset_job(
    "load_test_job",
    selection=dg.AssetSelection.groups("load_test"),
    description="Deploy the build's image, wipe and seed, run k6, then compare and export.",
    executor_def=dg.in_process_executor,
)

trend_report_job = dg.define_asset_job(
    "trend_report_job", selection=dg.AssetSelection.groups("trends"),
    description="Rebuild the trend report across every build.",
    executor_def=dg.in_process_executor,
)
