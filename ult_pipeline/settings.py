"""Pipeline settings from the environment, read when a run is requested (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _number(env, name: str, default: str | None, kind: type):
    """``kind(env[name])``, or a ValueError that names the variable and what it must be."""
    value = env.get(name) or default
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"${name}={value!r} is not a {'whole number' if kind is int else 'number'}") from None


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
        """The settings in ULT_* variables; ValueError naming the variable when one is not a number."""
        env = os.environ
        return cls(
            dataset_profile=env.get("ULT_DATASET_PROFILE", "standard"),
            dataset_seed=_number(env, "ULT_DATASET_SEED", "1", int),
            load_profile=env.get("ULT_LOAD_PROFILE", "default"),
            load_duration=env.get("ULT_LOAD_DURATION") or None,
            load_rate=_number(env, "ULT_LOAD_RATE", None, float),
            scenario=env.get("ULT_SCENARIO") or None,
            ecr_repository=env.get("ULT_ECR_REPOSITORY", "user-service"),
            sensor_interval_s=_number(env, "ULT_SENSOR_INTERVAL_S", "30", int),
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
