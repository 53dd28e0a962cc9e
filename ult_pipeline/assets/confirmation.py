"""Confirmation runs: the candidate and its baseline image, interleaved A,B,A,B on one environment.

Interleaving on the same host at nearly the same time cancels most of the environment's
run-to-run noise, so a suspected regression is confirmed or cleared before anyone is paged.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pandas as pd

from ult_pipeline.analysis.history import ALL_OPERATIONS, build_order
from ult_pipeline.analysis.pipeline_history import latest_metadata
from ult_pipeline.analysis.regression import tag_of
from ult_pipeline.aws.images import Image
from ult_pipeline.loadtest.profiles import get_load_profile
from ult_pipeline.loadtest.run import run_load_test


def _image(instance: dg.DagsterInstance, build: str) -> Image:
    meta = latest_metadata(instance, "target_deployment", [build]).get(build)
    if not meta:
        raise dg.Failure(f"confirmation needs the image of build {build!r}, but it was never deployed")
    return Image(datetime.fromisoformat(meta["pushed_at"]), meta["image_digest"], meta["image_tag"])


def relative_p95(operations: pd.DataFrame) -> dict[str, float]:
    ops = operations[operations["operation"] != ALL_OPERATIONS].set_index("operation")["p95"]
    level = float(ops.median()) or 1.0
    return {op: float(v) / level for op, v in ops.items()}


def run_ab_confirmation(context, history, build, policy, seeded_dataset, target_api, target_deployer, k6_runner,
                        results_store, aws, *, pairs: int, duration: str) -> dict[str, dict[str, list[float]]]:
    order = build_order(history)
    earlier = policy.earlier_builds(order, build, tag_of)
    if not earlier:
        raise dg.Failure("confirmation needs a baseline build")
    images = {"baseline": _image(context.instance, earlier[-1]), "candidate": _image(context.instance, build)}
    profile = get_load_profile("default").with_overrides(duration=duration)
    runs: dict[str, dict[str, list[float]]] = {"baseline": {}, "candidate": {}}
    out = results_store.partition_dir(build) / "confirmation"
    for pair in range(pairs):
        for role in ("baseline", "candidate"):  # ends on the candidate: the environment stays on this build
            context.log.info(f"confirmation {pair + 1}/{pairs}: {role} {images[role].tag}")
            target_deployer.deploy(images[role])
            result = run_load_test(
                runner=k6_runner.runner(), target_url=target_api.url,
                identities_path=seeded_dataset["identities_path"], profile=profile,
                out_dir=out / f"{pair}-{role}", dataset_hash=seeded_dataset["dataset_hash"], image=images[role].tag,
                tags={"build": build, "confirmation": role}, log=context.log.info,
            )
            for op, value in relative_p95(result.operations).items():
                runs[role].setdefault(op, []).append(value)
    return runs
