"""Pipeline settings from the environment, read when a run is requested (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineSettings:
    dataset_profile: str = "standard"
    dataset_seed: int = 1
    load_profile: str = "default"
    load_duration: str | None = None
    load_rate: float | None = None
    scenario: str | None = None
    ecr_repository: str = "user-service"
    sensor_interval_s: int = 30
    confirm_regressions: bool = True

    @classmethod
    def from_env(cls) -> PipelineSettings:
        env = os.environ
        return cls(
            dataset_profile=env.get("ULT_DATASET_PROFILE", "standard"),
            dataset_seed=int(env.get("ULT_DATASET_SEED", "1")),
            load_profile=env.get("ULT_LOAD_PROFILE", "default"),
            load_duration=env.get("ULT_LOAD_DURATION") or None,
            load_rate=float(env["ULT_LOAD_RATE"]) if env.get("ULT_LOAD_RATE") else None,
            scenario=env.get("ULT_SCENARIO") or None,
            ecr_repository=env.get("ULT_ECR_REPOSITORY", "user-service"),
            sensor_interval_s=int(env.get("ULT_SENSOR_INTERVAL_S", "30")),
            confirm_regressions=env.get("ULT_CONFIRM_REGRESSIONS", "1") not in ("0", "false", "no"),
        )

    def run_config(self) -> dict:
        k6 = {"load_profile": self.load_profile}
        k6.update({k: v for k, v in {"duration": self.load_duration, "rate": self.load_rate,
                                      "scenario": self.scenario}.items() if v is not None})
        return {"ops": {
            "seeded_dataset": {"config": {"profile": self.dataset_profile, "seed": self.dataset_seed}},
            "k6_results": {"config": k6},
            "ab_confirmation": {"config": {"confirm": self.confirm_regressions}},
        }}
