"""Assembles the code location; every piece is defined in its own module."""

import dagster as dg

from ult_pipeline.assets.k6_results import k6_results
from ult_pipeline.assets.seeded_dataset import seeded_dataset
from ult_pipeline.resources.deployer import SandboxDeployerResource
from ult_pipeline.resources.k6 import K6RunnerResource
from ult_pipeline.resources.target import (
    ResultsStoreResource,
    TargetApiResource,
    TargetDatabaseResource,
    TokenSignerResource,
)

defs = dg.Definitions(
    assets=[seeded_dataset, k6_results],
    resources={
        "target_api": TargetApiResource(url=dg.EnvVar("ULT_TARGET_URL"), api_key=dg.EnvVar("ULT_TARGET_API_KEY")),
        "target_db": TargetDatabaseResource(dsn=dg.EnvVar("ULT_TARGET_DSN"), environment=dg.EnvVar("ULT_TARGET_ENVIRONMENT")),
        "token_signer": TokenSignerResource(),
        "target_deployer": SandboxDeployerResource(),
        "results_store": ResultsStoreResource(),
        "k6_runner": K6RunnerResource(),
    },
)
