"""`seeded_dataset`: the target's data, wiped and seeded the same way for every build."""


from dataclasses import asdict
from pathlib import Path

import dagster as dg
from pydantic import Field

from ult_pipeline.assets.presentation import build_entries
from ult_pipeline.assets.run_config_check import require_valid_run_config
from ult_pipeline.partitions import builds_partitions
from ult_pipeline.resources.deployer import TargetDeployerResource
from ult_pipeline.resources.target import (
    ResultsStoreResource,
    TargetApiResource,
    TargetDatabaseResource,
    TokenSignerResource,
)
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.profiles import DatasetProfile, get_profile
from ult_pipeline.seeding.run import PreparedDataset, prepare
from ult_pipeline.target_db.wipe import TargetCheck

SEEDED_COUNTS_MATCH = "seeded_counts_match"


class SeededDatasetConfig(dg.Config):
    profile: str = Field(default="standard", description="tiny, standard, large, or a key of custom_profiles")
    seed: int = Field(default=1, description="random seed: same profile and seed, same data")
    custom_profiles: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="extra profiles: name -> {organizations, schools_per_organization, classes_per_school, "
        "teachers_per_organization, students_per_organization}",
    )


def wipe_and_seed(profile: DatasetProfile, seed: int, identities_path: Path, *, target_api: TargetApiResource,
                  target_db: TargetDatabaseResource, token_signer: TokenSignerResource,
                  target_deployer: TargetDeployerResource, log) -> tuple[PreparedDataset, tuple[int, float]]:
    """Wipes the target's database (only once proven to be the one behind the target API), seeds the
    dataset of `profile` and `seed` through the API, writes the identities file, then refreshes the
    planner's statistics. Returns what was seeded and (tables analysed, seconds). Used by
    `seeded_dataset` and by every write test, which each start from freshly seeded data.

    Raises what `seeding.run.prepare` and the wipe raise (a refused wipe changes nothing)."""
    dataset = generate(profile, seed)
    client = target_api.client()
    try:
        prepared = prepare(
            client=client, dataset=dataset, signer=token_signer.signer(), identities_path=identities_path,
            wipe=lambda: target_db.wipe(restart_service=target_deployer.restart, behind=TargetCheck.through(client),
                                        log=log),
            concurrency=target_api.concurrency, log=log,
        )
    finally:
        client.close()
    # Fresh tables have no planner statistics until autovacuum analyses them: without this, whether
    # it did before or during the load test decided some operations' plans (see target_db.statistics).
    return prepared, target_db.refresh_statistics()


@dg.asset(
    partitions_def=builds_partitions,
    group_name="load_test",
    pool="load_test_target",
    deps=["target_deployment"],
    check_specs=[dg.AssetCheckSpec(SEEDED_COUNTS_MATCH, asset="seeded_dataset", blocking=True,
                                   description="counts read back through the API equal the profile's")],
    description="Wipes the target's database (guarded by its load-test marker, and only once it is proven to be "
    "the database behind the target API) and seeds a known dataset "
    "through the GraphQL API; writes the identities file for k6. Output: the manifest (ids, no tokens).",
)
def seeded_dataset(
    context: dg.AssetExecutionContext,
    config: SeededDatasetConfig,
    target_api: TargetApiResource,
    target_db: TargetDatabaseResource,
    token_signer: TokenSignerResource,
    target_deployer: TargetDeployerResource,
    results_store: ResultsStoreResource,
):
    require_valid_run_config(context)  # every setting of the run, before the wipe
    profile = get_profile(config.profile, config.custom_profiles)
    prepared, (analysed_tables, analyze_seconds) = wipe_and_seed(
        profile, config.seed, results_store.partition_dir(context.partition_key) / "identities.json",
        target_api=target_api, target_db=target_db, token_signer=token_signer, target_deployer=target_deployer,
        log=context.log.info,
    )
    counts_table = dg.MetadataValue.table(
        records=[
            dg.TableRecord({"entity": k, "expected": prepared.expected_counts[k], "actual": prepared.actual_counts[k]})
            for k in prepared.expected_counts
        ],
        schema=dg.TableSchema(columns=[
            dg.TableColumn("entity", "string"), dg.TableColumn("expected", "int"), dg.TableColumn("actual", "int"),
        ]),
    )
    yield dg.Output(
        # The profile's definition too: a later step seeds the same data again (the write tests).
        {**prepared.manifest(), "profile_definition": asdict(profile)},
        metadata={
            **build_entries(context.partition_key, context.run.tags),
            "profile": prepared.profile,
            "seed": prepared.seed,
            "dataset_hash": prepared.dataset_hash,
            "counts": counts_table,
            "students": prepared.actual_counts["students"],
            "teachers": prepared.actual_counts["teachers"],
            "api_calls": prepared.seeding.calls,
            "seeding_seconds": dg.FloatMetadataValue(round(prepared.seeding.seconds, 3)),
            "calls_per_second": dg.FloatMetadataValue(round(prepared.seeding.calls_per_second, 1)),
            "wipe_strategy": prepared.wipe.strategy if prepared.wipe else "none",
            "wipe_seconds": dg.FloatMetadataValue(round(prepared.wipe.seconds + prepared.wipe.restart_seconds, 3))
            if prepared.wipe else dg.FloatMetadataValue(0.0),
            "analysed_tables": analysed_tables,
            "analyze_seconds": dg.FloatMetadataValue(round(analyze_seconds, 3)),
            "identities": prepared.identities,
            "identities_path": dg.MetadataValue.path(str(prepared.identities_path)),
        },
    )
    yield dg.AssetCheckResult(
        check_name=SEEDED_COUNTS_MATCH,
        passed=prepared.counts_match,
        metadata={"expected": prepared.expected_counts, "actual": prepared.actual_counts},
        description=None if prepared.counts_match else "counts read back differ from the profile",
    )
