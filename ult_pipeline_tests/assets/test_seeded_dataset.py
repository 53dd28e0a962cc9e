"""`seeded_dataset` materialized for a build partition against the sandbox."""

from __future__ import annotations

import json

import dagster as dg

from ult_pipeline.assets.seeded_dataset import SEEDED_COUNTS_MATCH, seeded_dataset


def test_materialize_seeds_verifies_and_records_metadata(pipeline_resources, sandbox):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("builds", ["v1-abc123"])
        result = dg.materialize(
            [seeded_dataset], partition_key="v1-abc123", instance=instance, resources=pipeline_resources,
            run_config={"ops": {"seeded_dataset": {"config": {"profile": "tiny", "seed": 2}}}},
        )
        assert result.success
        [check] = result.get_asset_check_evaluations()
        assert check.check_name == SEEDED_COUNTS_MATCH and check.passed
        [mat] = result.asset_materializations_for_node("seeded_dataset")
        meta = {k: v.value for k, v in mat.metadata.items()}
        assert meta["profile"] == "tiny" and meta["students"] == 100 and meta["teachers"] == 5
        assert meta["dataset_hash"].startswith("sha256:") and meta["wipe_strategy"] == "recreate"
        assert meta["api_calls"] > 0 and meta["calls_per_second"] > 0
        manifest = result.output_for_node("seeded_dataset")
        assert len(manifest["ids"]["users"]) == 110  # an owner, 2 organization and 2 school admins
        # Secrets never reach metadata, the manifest or the event log.
        identities = json.loads(open(manifest["identities_path"]).read())["identities"]
        logged = json.dumps([str(e) for e in instance.all_logs(result.run_id)]) + json.dumps(manifest) + str(meta)
        assert sandbox.api_key not in logged
        assert not any(i["token"] in logged for i in identities[:20])
