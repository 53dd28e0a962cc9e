"""Wipe, seed, verify and write identities: the whole preparation of a target's data."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ult_pipeline.seeding.dataset import Dataset
from ult_pipeline.seeding.identities import TokenSigner, build_identities, write_identities
from ult_pipeline.seeding.seeder import DEFAULT_CONCURRENCY, Seeder, SeedResult, read_counts
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.wipe import WipeResult


@dataclass(frozen=True)
class PreparedDataset:
    dataset_hash: str
    profile: str
    seed: int
    namespace: str
    expected_counts: dict[str, int]
    actual_counts: dict[str, int]
    seeding: SeedResult
    wipe: WipeResult | None
    identities_path: Path
    identities: int
    seconds: float
    # "whole_target" (wiped first: the target's totals are counted) or "namespace" (seeded beside
    # other data: the dataset's organizations and namespaced emails are); see seeder.read_counts.
    counts_scope: str = "whole_target"

    @property
    def counts_match(self) -> bool:
        """The `seeded_counts_match` check: what the target holds equals the dataset, entity by
        entity and link by link, so a user created twice or a stray row fails it."""
        return self.expected_counts == self.actual_counts

    def manifest(self) -> dict:
        """What later steps need to know about the data: ids, never tokens."""
        return {
            "dataset_hash": self.dataset_hash,
            "profile": self.profile,
            "seed": self.seed,
            "namespace": self.namespace,
            "counts": self.actual_counts,
            "ids": self.seeding.ids.to_json(),
            "identities_path": str(self.identities_path),
        }


def prepare(
    *,
    client: GraphQLClient,
    dataset: Dataset,
    signer: TokenSigner,
    identities_path: Path,
    wipe: Callable[[], WipeResult] | None,
    concurrency: int = DEFAULT_CONCURRENCY,
    log: Callable[[str], None] = lambda _m: None,
) -> PreparedDataset:
    """Wipe (unless ``wipe`` is None: then the dataset must carry a fresh namespace), seed, verify.

    After a wipe the counts are the whole target's (nothing else may be there); without one,
    only the dataset's own organizations and namespaced users are counted.
    Raises SeedingError (including a call that may have landed: wipe and seed again),
    GraphQLCallError, TransportError, and the wipe's errors.
    """
    started = time.perf_counter()
    wipe_result = wipe() if wipe is not None else None
    if wipe_result:
        restarted = f", service back in {wipe_result.restart_seconds:.2f} s" if wipe_result.strategy == "recreate" else ""
        log(f"wiped ({wipe_result.strategy}) in {wipe_result.seconds:.2f} s{restarted}")
    seeding = Seeder(client, concurrency=concurrency, log=log).seed(dataset)
    log(f"seeded {dataset.profile.name}: {seeding.calls} API calls in {seeding.seconds:.2f} s")
    whole_target = wipe is not None
    actual = read_counts(client, dataset, seeding.ids, whole_target=whole_target)
    identities = build_identities(dataset, seeding.ids, signer)
    write_identities(identities_path, identities, dataset.content_hash())
    return PreparedDataset(
        dataset_hash=dataset.content_hash(), profile=dataset.profile.name, seed=dataset.seed,
        namespace=dataset.namespace, expected_counts=dataset.expected_counts(), actual_counts=actual,
        seeding=seeding, wipe=wipe_result, identities_path=identities_path, identities=len(identities),
        seconds=time.perf_counter() - started, counts_scope="whole_target" if whole_target else "namespace",
    )
