"""Load profiles: the arrival rate, duration and mix that k6 runs (see k6/README.md)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace

SCENARIOS = ("student_landing", "teacher", "admin_writes", "roster_contention", "mixed")
# Scenarios that write to the target (k6/scenarios/admin_writes.js, roster_contention.js).
WRITE_SCENARIOS = ("admin_writes", "roster_contention")
# The mutations the write scenarios send (one k6/graphql/<name>.graphql each): their successful requests
# and rows are a run's data volume (LoadTestResult.writes).
WRITE_OPERATIONS = (
    "createClasses", "addClassesToSchools", "addStudentsToClasses", "addTeachersToClasses", "updateClasses",
    "moveStudentsToClass", "updateUsers", "removeStudentsFromClasses", "deleteClasses",
)
# roster_contention: parallel one-student adds per round (k6's ULT_CONTENTION_WRITERS), and its bounds.
DEFAULT_CONTENTION_WRITERS = 10
CONTENTION_WRITERS_RANGE = (2, 50)
# roster_contention's rounds per second when nothing else is asked (`ult run --scenario roster_contention`).
DEFAULT_CONTENTION_RATE = 2
# admin_writes' iterations per second when nothing else is asked (`ult run`, the write test): 9 mutations
# each, one administrator's session; the read journeys' 22/s would be about 200 writes/s.
DEFAULT_ADMIN_WRITES_RATE = 2
# Fields added after history was recorded: left out of to_json() at their default, so the fingerprint
# of a run that does not use them stays what it was (history stays comparable).
_OPTIONAL_FIELDS = {"admin_writes_weight": 0, "contention_writers": DEFAULT_CONTENTION_WRITERS}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration_seconds(text: str) -> int:
    """`10m`, `90s`, `1m30s`, `1h` -> seconds (above 0); a clear ValueError for anything else."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) and text else None
    if not match or not any(match.groups()):
        raise ValueError(f"duration {text!r} is not like 30s, 10m, 1m30s or 1h")
    h, m, s = (int(g or 0) for g in match.groups())
    if h * 3600 + m * 60 + s == 0:
        raise ValueError(f"duration {text!r} is zero: a load test needs at least 1s")
    return h * 3600 + m * 60 + s


def split_by_weight(total: int, weights: list[int], minimum: int = 1) -> list[int]:
    """`total` split into whole parts proportional to `weights` (largest remainder), each part at least
    `minimum`: how k6/lib/config.js splitByWeight shares `mixed`'s rate among its journeys (the same
    rule, checked here before anything runs; a test compares both). The parts may add up to more than
    `total` when a small weight gets the minimum."""
    exact = [total * w / sum(weights) for w in weights]
    parts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:total - sum(parts)]:
        parts[i] += 1
    return [max(p, minimum) if w > 0 else 0 for p, w in zip(parts, weights, strict=True)]


@dataclass(frozen=True)
class LoadProfile:
    name: str = "default"
    scenario: str = "student_landing"
    rate: float = 22.0
    duration: str = "10m"
    pre_allocated_vus: int = 100
    max_vus: int = 1000
    student_weight: int = 80
    teacher_weight: int = 20
    # `mixed`: share of administrators' writes (admin_writes); 0 keeps `mixed` read-only (e.g. 70/20/10).
    admin_writes_weight: int = 0
    # `roster_contention`: parallel one-student adds to each round's class (2..50).
    contention_writers: int = DEFAULT_CONTENTION_WRITERS

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario {self.scenario!r} is not one of {', '.join(SCENARIOS)}")
        # k6's constant-arrival-rate runs here with timeUnit 1s and an integer rate (k6/lib/env.js):
        # a fractional rate would be refused by k6 only after the wipe and the seeding.
        if not isinstance(self.rate, (int, float)) or not math.isfinite(self.rate) or self.rate < 1 \
                or self.rate != int(self.rate):
            raise ValueError(f"rate must be a whole number of iterations/s, at least 1, got {self.rate}")
        for name in ("pre_allocated_vus", "max_vus"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_vus < self.pre_allocated_vus:
            raise ValueError(f"max_vus ({self.max_vus}) must be at least pre_allocated_vus ({self.pre_allocated_vus})")
        weights = (self.student_weight, self.teacher_weight, self.admin_writes_weight)
        if any(not isinstance(w, int) or w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError("student_weight, teacher_weight and admin_writes_weight must be whole numbers, 0 or "
                             "more, and not all 0")
        if self.scenario == "mixed":
            rates = split_by_weight(int(self.rate), [w for w in weights if w > 0])
            if sum(rates) != int(self.rate):
                enough = next(r for r in range(int(self.rate), 10 * int(self.rate) + 10)
                              if sum(split_by_weight(r, [w for w in weights if w > 0])) == r)
                raise ValueError(
                    f"mixed at {int(self.rate)} iterations/s cannot give each of its {len(rates)} journeys at least 1 "
                    f"iteration/s by their weights {'/'.join(str(w) for w in weights if w > 0)} (it would run "
                    f"{sum(rates)}/s): raise the rate to at least {enough}, or set a weight to 0")
        low, high = CONTENTION_WRITERS_RANGE
        if not isinstance(self.contention_writers, int) or not low <= self.contention_writers <= high:
            raise ValueError(f"contention_writers must be a whole number from {low} to {high}, "
                             f"got {self.contention_writers}")
        duration_seconds(self.duration)

    @property
    def seconds(self) -> int:
        return duration_seconds(self.duration)

    def with_overrides(self, **overrides) -> LoadProfile:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def k6_env(self) -> dict[str, str]:
        return {
            "ULT_PROFILE": "default",
            "ULT_SCENARIO": self.scenario,
            "ULT_RATE": str(int(self.rate)),  # k6/lib/env.js takes digits only: never "1e+06"
            "ULT_DURATION": self.duration,
            "ULT_PRE_ALLOCATED_VUS": str(self.pre_allocated_vus),
            "ULT_MAX_VUS": str(self.max_vus),
            "ULT_STUDENT_WEIGHT": str(self.student_weight),
            "ULT_TEACHER_WEIGHT": str(self.teacher_weight),
            "ULT_ADMIN_WRITES_WEIGHT": str(self.admin_writes_weight),
            "ULT_CONTENTION_WRITERS": str(self.contention_writers),
        }

    @property
    def writes(self) -> bool:
        """The run writes to the target (its data changes): admin_writes, roster_contention, or a `mixed`
        with a writes weight."""
        return self.scenario in WRITE_SCENARIOS or (self.scenario == "mixed" and self.admin_writes_weight > 0)

    def to_json(self) -> dict:
        data = asdict(self)
        for name, default in _OPTIONAL_FIELDS.items():
            if data[name] == default:
                del data[name]
        return data


LOAD_PROFILES = {
    # Kept comparable with the old test: 22 iterations/s of the landing journey for 10 minutes.
    "default": LoadProfile(),
    "short": LoadProfile(name="short", rate=5.0, duration="20s", pre_allocated_vus=5, max_vus=50),
}


def get_load_profile(name: str) -> LoadProfile:
    try:
        return LOAD_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown load profile {name!r}; known: {', '.join(LOAD_PROFILES)}") from None
