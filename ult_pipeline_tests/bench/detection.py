"""Benchmark: the regression gate (`ult_pipeline.analysis.detector.compare`) on synthetic build histories.

    .venv/bin/python -m ult_pipeline_tests.bench.detection [--series 200] [--workers 2]

Histories as in /work/shared/notes/regression-anchors.md: 40 builds of p95 ~ 100 ms with a run-to-run
CV of 2, 3 or 5 % (normal, or Student-t with 3 dof scaled to the same CV), each with a within-run
sampling SE of 0.5 % (Observation.sampling_se); a step of +3, +5, +8 or +10 % at build 25 (index 24),
or none. The gate runs after every build from build 8 on: `compare(series[:i + 1])` for i = 7..39.

An alarm is a "regressed" verdict with confidence "confirmed". Per cell:
- detected: an alarm at the step build or within the 15 builds after it (builds 25..39);
- builds needed: first alarm at or after the step, the step build counting as 1 (median / p90 over all
  histories, ">15" when not caught), and the share caught within 2 builds;
- FA before step: share of histories with any alarm at builds 8..24 (17 gate decisions);
- suspected: share of those pre-step gate decisions that were "regressed (suspected)", and of
  histories with any;
- no-step histories also get the steady-state false-alarm rate: any alarm at builds 25..40, where
  the baseline is a full window of 20 builds (16 decisions).
The baseline detector, in the same run on the same histories: newest build vs the mean and sd of
the last 20 earlier builds, alarm when z > 2.33. The oracle (true mean and sd known, z of the mean
of the last 2 builds, threshold set on this run's histories for 2 % FA before the step; normal noise
only) is the ceiling for any gate deciding from 2 builds under the same constraint.
Outliers: no-step normal histories where one random gated build (8..40) runs 15-30 % slow; the
share with an alarm anywhere (builds 8..40) is printed next to the same share without outliers.
Change points: one PELT analysis of each whole 40-build series (as in the anchors' first table): a hit
is a change point at builds 24-26; false: any change point in a no-step series.
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import Pool

import numpy as np

from ult_pipeline.analysis.detector import DetectorConfig, Observation, compare
from ult_pipeline.analysis.stats_changepoints import change_points, difference_noise

N_BUILDS = 40
STEP_AT = 24  # index of the first slow build: build 25
FIRST_GATE = 7  # index of the first gated build: build 8
HORIZON = 15  # builds after the step (the step build included) in which a detection counts
SAMPLING_SE = 0.005
CVS = (0.02, 0.03, 0.05)
STEPS = (0.0, 0.03, 0.05, 0.08, 0.10)
GATE_CONFIG = DetectorConfig(find_change_points=False)


def histories(rng: np.random.Generator, n: int, cv: float, step: float, noise: str, outlier: bool) -> np.ndarray:
    if noise == "normal":
        eps = rng.standard_normal((n, N_BUILDS))
    else:  # Student-t, 3 dof, scaled to unit variance (the t3 variance is 3)
        eps = rng.standard_t(3, (n, N_BUILDS)) / np.sqrt(3.0)
    values = 100.0 * (1.0 + cv * eps)
    values = np.maximum(values, 1.0)  # heavy tails: keep a latency positive
    if step:
        values[:, STEP_AT:] *= 1.0 + step
    if outlier:
        at = rng.integers(FIRST_GATE, N_BUILDS, n)
        values[np.arange(n), at] *= 1.0 + rng.uniform(0.15, 0.30, n)
    return values


def gate_ours(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confirmed alarm, suspected regression) per history and gated build."""
    n = len(values)
    gates = range(FIRST_GATE, N_BUILDS)
    alarm = np.zeros((n, len(gates)), dtype=bool)
    suspect = np.zeros((n, len(gates)), dtype=bool)
    for s in range(n):
        series = [Observation(f"b{i}", float(v), SAMPLING_SE * float(v)) for i, v in enumerate(values[s])]
        for g, i in enumerate(gates):
            c = compare(series[: i + 1], GATE_CONFIG)
            if c.verdict == "regressed":
                alarm[s, g] = c.confidence == "confirmed"
                suspect[s, g] = c.confidence == "suspected"
    return alarm, suspect


def gate_zscore(values: np.ndarray, threshold: float = 2.33, last: int = 20) -> np.ndarray:
    gates = range(FIRST_GATE, N_BUILDS)
    alarm = np.zeros((len(values), len(gates)), dtype=bool)
    for g, i in enumerate(gates):
        base = values[:, max(0, i - last): i]
        z = (values[:, i] - base.mean(axis=1)) / base.std(axis=1, ddof=1)
        alarm[:, g] = z > threshold
    return alarm


def oracle_z2(values: np.ndarray, cv: float) -> np.ndarray:
    """z of the mean of the last 2 builds with the true mean (100) and sd known, per gate."""
    gates = np.arange(FIRST_GATE, N_BUILDS)
    pair = (values[:, gates] + values[:, gates - 1]) / 2.0
    return (pair - 100.0) / (100.0 * cv / np.sqrt(2.0))


def cell(job: tuple) -> dict:
    noise, cv, step, outlier, n, seed = job
    rng = np.random.default_rng(seed)
    values = histories(rng, n, cv, step, noise, outlier)
    t = time.perf_counter()
    alarm, suspect = gate_ours(values)
    out = {"job": job[:4], "ours": alarm, "suspect": suspect, "z233": gate_zscore(values),
           "oracle": oracle_z2(values, cv), "seconds": time.perf_counter() - t}
    if noise == "normal" and not outlier:
        hits = []
        for s in range(n):
            y = np.log(values[s])
            sigma = max(difference_noise(y), float(np.log1p(GATE_CONFIG.noise_floor_cv)))
            hits.append(change_points(y, sigma, GATE_CONFIG.change_point_penalty))
        out["cps"] = hits
    return out


PRE = slice(0, STEP_AT - FIRST_GATE)  # gates at builds 8..24
POST = slice(STEP_AT - FIRST_GATE, STEP_AT - FIRST_GATE + HORIZON)  # builds 25..39


def detection(alarm: np.ndarray) -> tuple[float, str, str, float]:
    post = alarm[:, POST]
    hit = post.any(axis=1)
    needed = np.where(hit, np.argmax(post, axis=1) + 1, np.inf)

    def fmt(x: float) -> str:
        return f">{HORIZON}" if not np.isfinite(x) else f"{x:.0f}"

    return hit.mean(), fmt(np.median(needed)), fmt(np.percentile(needed, 90, method="inverted_cdf")), \
        (needed <= 2).mean()


def pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def report(results: list[dict], n: int) -> None:
    by = {r["job"]: r for r in results}
    print(f"\n{n} histories per cell; alarm = 'regressed' + 'confirmed' (ours); z>2.33 = newest vs last 20\n")
    for noise in ("normal", "t3"):
        print(f"== noise: {'normal' if noise == 'normal' else 'Student-t, 3 dof'} ==")
        header = (f"{'CV':>4} {'step':>5} | {'detector':<8} | {'detected':>8} {'median':>6} {'p90':>4} {'<=2 b':>6} "
                  f"| {'FA before step':>14} | {'suspected: gates / histories':>28} | {'FA steady':>9}")
        print(header)
        print("-" * len(header))
        for cv in CVS:
            # The oracle's threshold: 2 % of this run's histories (pre-step gates, all cells) alarm by chance.
            pre_max = np.concatenate([by[(noise, cv, s, False)]["oracle"][:, PRE].max(axis=1) for s in STEPS])
            oracle_c = float(np.quantile(pre_max, 0.98))
            if noise == "normal":
                print(f"CV {100 * cv:.0f}%: oracle threshold z2 > {oracle_c:.2f}")
            for step in STEPS:
                r = by[(noise, cv, step, False)]
                oracle = r["oracle"] > oracle_c
                rows = [("ours", r["ours"]), ("z>2.33", r["z233"])]
                if noise == "normal":  # a mean-and-sd test is the ceiling for normal noise only
                    rows.append(("oracle", oracle))
                for name, alarm in rows:
                    fa = alarm[:, PRE].any(axis=1).mean()
                    if step:
                        det, med, p90, within2 = detection(alarm)
                        d = f"{pct(det):>8} {med:>6} {p90:>4} {pct(within2):>6}"
                    else:
                        d = f"{'-':>8} {'-':>6} {'-':>4} {'-':>6}"
                    sus = f"{pct(r['suspect'][:, PRE].mean())} / {pct(r['suspect'][:, PRE].any(axis=1).mean())}" \
                        if name == "ours" else "-"
                    steady = pct(alarm[:, PRE.stop:].any(axis=1).mean()) if not step else "-"
                    print(f"{100 * cv:>3.0f}% {f'+{100 * step:.0f}%' if step else 'none':>5} | {name:<8} | {d} "
                          f"| {pct(fa):>14} | {sus:>28} | {steady:>9}")
            print()
        pooled = {cv: np.concatenate([by[(noise, cv, s, False)]["ours"][:, PRE].any(axis=1) for s in STEPS]).mean()
                  for cv in CVS}
        print("FA before step, pooled over all cells of a CV (ours): "
              + ", ".join(f"CV {100 * cv:.0f}%: {pct(v).strip()} of {len(STEPS) * n}" for cv, v in pooled.items()))
        print()

    print("== single outlier builds (no step, normal noise; one gated build 15-30 % slow) ==")
    print(f"{'CV':>4} | {'alarm anywhere, with outlier':>28} | {'same, no outlier':>16} | {'suspected (hist.)':>17} "
          f"| {'z>2.33 with outlier':>19}")
    for cv in CVS:
        r, clean = by[("normal", cv, 0.0, True)], by[("normal", cv, 0.0, False)]
        print(f"{100 * cv:>3.0f}% | {pct(r['ours'].any(axis=1).mean()):>28} | {pct(clean['ours'].any(axis=1).mean()):>16} "
              f"| {pct(r['suspect'].any(axis=1).mean()):>17} | {pct(r['z233'].any(axis=1).mean()):>19}")

    print("\n== change points, one analysis of each whole 40-build series (PELT, normal noise) ==")
    print(f"{'CV':>4} | " + " | ".join(f"{f'+{100 * s:.0f}% hit':>9}" for s in STEPS[1:]) + " | no step: false CP")
    for cv in CVS:
        cells = []
        for step in STEPS[1:]:
            cps = by[("normal", cv, step, False)]["cps"]
            cells.append(np.mean([any(STEP_AT - 1 <= c <= STEP_AT + 1 for c in h) for h in cps]))
        false = np.mean([len(h) > 0 for h in by[("normal", cv, 0.0, False)]["cps"]])
        print(f"{100 * cv:>3.0f}% | " + " | ".join(f"{pct(c):>9}" for c in cells) + f" | {pct(false)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=200, help="histories per cell")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20240)
    args = parser.parse_args()
    jobs = []
    for noise in ("normal", "t3"):
        for cv in CVS:
            for step in STEPS:
                jobs.append((noise, cv, step, False))
    jobs += [("normal", cv, 0.0, True) for cv in CVS]
    jobs = [(*j, args.series, args.seed + 1000 * k) for k, j in enumerate(jobs)]
    t = time.perf_counter()
    with Pool(args.workers) as pool:
        results = pool.map(cell, jobs, chunksize=1)
    report(results, args.series)
    calls = len(jobs) * args.series * (N_BUILDS - FIRST_GATE)
    busy = sum(r["seconds"] for r in results)
    print(f"\n{calls} gate decisions in {time.perf_counter() - t:.0f} s wall "
          f"({1000 * busy / calls:.2f} ms per compare call, {args.workers} workers)")


if __name__ == "__main__":
    main()
