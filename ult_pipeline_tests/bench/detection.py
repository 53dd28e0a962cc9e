"""Benchmark: the shipped regression gate on synthetic build histories, as CI and the pipeline drive it.

    .venv/bin/python -m ult_pipeline_tests.bench.detection [--series 200] [--series-8 100] [--workers 2]

The gate is `gate.judge` with `regression.DEFAULT_GATE`, the function and defaults of the
`regression_comparison` asset and `ult analyze`, over the same window (`last:20`: at most 20
baseline builds), on a long history frame exactly like the one `ult analyze` reads. A test
(`test_bench_gate.py`) pins that down.

Histories (after /work/shared/notes/regression-anchors.md): 40 builds, the p50 of 1 or 8 operations
with a run-to-run CV of 3 % per operation (8 operations: a host-wide factor of 2 % shared by all,
2.2 % each on its own), a within-run sampling error of 0.5 %; a step of +5 % or +10 % on one
operation from build 25 on, or none; optionally 5 % of builds hit by a noisy neighbour (every
operation 15-30 % slower on that build). The gate runs after every build from build 8 on.

Two gates:
- `ult analyze` (CI): fails (exit 1) on a confirmed regression (`gate.decide`).
- the pipeline: every operation the analysis wants re-run (`Judgement.needs_confirmation`) is
  re-run A,B,A,B against `gate.representative_baseline`, simulated with the pair noise that
  `bench.confirmation` measured in the sandbox (`ab.PairConfig.pair_noise`), and judged by
  `ab.confirm_operations`; it fails when the A/B runs confirm.

Printed per cell: share of histories failing before the step (false alarms, gates 8..24), share
catching the step within 2 builds and within 15, the median builds needed, and for the pipeline the
A/B confirmations per 100 builds (their load-test minutes). The baseline detector "z > 2.33 on the
last 20" runs on the same histories; the anchors' Otava figures are quoted for comparison.
"""

from __future__ import annotations

import argparse
import time
from multiprocessing import Pool

import numpy as np
import pandas as pd

from ult_pipeline.analysis.ab import AbRun, PairConfig, confirm_operations
from ult_pipeline.analysis.gate import apply_confirmation, decide, judge, representative_baseline
from ult_pipeline.analysis.regression import DEFAULT_GATE
from ult_pipeline.loadtest.profiles import duration_seconds

N_BUILDS = 40
STEP_AT = 24  # index of the first slow build: build 25
FIRST_GATE = 7  # index of the first gated build: build 8
HORIZON = 15
CV = 0.03
HOST_CV = 0.02  # shared by every operation of a build (8 operations)
SAMPLING_SE = 0.005
OUTLIER_SHARE = 0.05
SLOW_OP = "op0"
GATE = DEFAULT_GATE
PAIRS = PairConfig()
# Per run of an A/B pair: the pair-to-pair sd of a difference is PAIRS.pair_noise.
RUN_NOISE = PAIRS.pair_noise / np.sqrt(2.0)


def history(rng: np.random.Generator, n_ops: int, step: float, outliers: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """(history frame, true log level per build and operation) of one synthetic history."""
    ops = [f"op{j}" for j in range(n_ops)]
    base = np.log(np.array([100.0 + 10 * j for j in range(n_ops)]))
    true = np.tile(base, (N_BUILDS, 1))
    if step:
        true[STEP_AT:, 0] += np.log1p(step)
    own = CV if n_ops == 1 else float(np.sqrt(CV**2 - HOST_CV**2))
    host = rng.normal(0, HOST_CV, (N_BUILDS, 1)) if n_ops > 1 else 0.0
    noisy = np.zeros((N_BUILDS, 1))
    if outliers:
        hit = rng.random(N_BUILDS) < OUTLIER_SHARE
        noisy[hit, 0] = np.log(rng.uniform(1.15, 1.30, hit.sum()))
    observed = np.exp(true + host + noisy + rng.normal(0, own, (N_BUILDS, n_ops)))
    pushed = pd.Timestamp("2026-11-01T00:00:00Z")
    rows = [{"build": f"b{b:02d}", "pushed_at": pushed + pd.Timedelta(minutes=10 * b), "operation": op,
             "metric": "p50", "value": float(observed[b, j]), "samples_path": None}
            for b in range(N_BUILDS) for j, op in enumerate(ops)]
    return pd.DataFrame(rows), true


def simulate_ab(rng: np.random.Generator, true: np.ndarray, candidate: int, baseline: int, metric_of: dict,
                n_ops: int) -> dict:
    """The A/B confirmation of `candidate` against `baseline`, each run drawn around the builds' true levels."""
    runs = []
    for pair in range(PAIRS.pairs):
        host = rng.normal(0, HOST_CV) if n_ops > 1 else 0.0  # cancels when normalized
        for role, b in (("baseline", baseline), ("candidate", candidate)):
            values = np.exp(true[b] + host + rng.normal(0, RUN_NOISE, n_ops))
            runs.append(AbRun(pair, role, {"p50": {f"op{j}": float(values[j]) for j in range(n_ops)}},
                              {"p50": {f"op{j}": SAMPLING_SE for j in range(n_ops)}}))
    return confirm_operations(runs, metric_of, PAIRS)


def gate_history(job: tuple) -> dict:
    n_ops, step, outliers, seed = job
    rng = np.random.default_rng(seed)
    frame, true = history(rng, n_ops, step, outliers)
    se = {(r.build, r.operation, r.metric): SAMPLING_SE * r.value for r in frame.itertuples()}
    gates = range(FIRST_GATE, N_BUILDS)
    ci_fail = np.zeros(len(gates), bool)
    pipe_fail = np.zeros(len(gates), bool)
    ab_runs = 0
    for g, i in enumerate(gates):
        build = f"b{i:02d}"
        judgement = judge(frame, build, GATE, sampling_se=se)
        ci_fail[g] = decide(judgement.operations).fails
        wanted = judgement.needs_confirmation()
        if wanted:
            ab_runs += 1
            baseline = representative_baseline(frame, build, wanted, config=GATE)
            results = simulate_ab(rng, true, i, int(baseline[1:]), {op: "p50" for op in wanted}, n_ops)
            pipe_fail[g] = decide(apply_confirmation(judgement.operations, results, GATE)).fails
    z = zscore(frame, n_ops)
    return {"job": job[:3], "ci": ci_fail, "pipeline": pipe_fail, "z233": z, "ab_runs": ab_runs}


def zscore(frame: pd.DataFrame, n_ops: int, threshold: float = 2.33, last: int = 20) -> np.ndarray:
    """Newest build vs the mean and sd of the last 20, any operation above `threshold`."""
    values = frame.pivot_table(index="build", columns="operation", values="value").to_numpy()
    alarm = np.zeros(N_BUILDS - FIRST_GATE, bool)
    for g, i in enumerate(range(FIRST_GATE, N_BUILDS)):
        base = values[max(0, i - last):i]
        z = (values[i] - base.mean(axis=0)) / base.std(axis=0, ddof=1)
        alarm[g] = bool((z > threshold).any())
    return alarm


CELLS = [(0.0, False), (0.0, True), (0.05, False), (0.10, False)]
PRE = slice(0, STEP_AT - FIRST_GATE)
POST = slice(STEP_AT - FIRST_GATE, STEP_AT - FIRST_GATE + HORIZON)


def pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def summarize(alarms: np.ndarray, step: float) -> str:
    fa = alarms[:, PRE].any(axis=1).mean()
    if not step:
        return f"{pct(fa):>9} | {'-':>8} {'-':>8} {'-':>6}"
    post = alarms[:, POST]
    hit = post.any(axis=1)
    needed = np.where(hit, np.argmax(post, axis=1) + 1, np.inf)
    median = np.median(needed)
    med = f">{HORIZON}" if not np.isfinite(median) else f"{median:.0f}"
    return f"{pct(fa):>9} | {pct((needed <= 2).mean()):>8} {pct(hit.mean()):>8} {med:>6}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=200, help="histories per cell, one operation")
    parser.add_argument("--series-8", type=int, default=100, help="histories per cell, eight operations")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20240)
    args = parser.parse_args()
    cells = CELLS
    jobs = []
    for n_ops, count in ((1, args.series), (8, args.series_8)):
        for c, (step, outliers) in enumerate(cells):
            jobs += [(n_ops, step, outliers, args.seed + 100_000 * n_ops + 1000 * c + s) for s in range(count)]
    started = time.perf_counter()
    with Pool(args.workers) as pool:
        results = pool.map(gate_history, jobs, chunksize=4)
    by: dict[tuple, list[dict]] = {}
    for r in results:
        by.setdefault(r["job"], []).append(r)
    ab_minutes = 2 * PAIRS.pairs * duration_seconds(PAIRS.duration) / 60
    print(f"gate: regression.DEFAULT_GATE ({GATE.baseline}); A/B: {PAIRS.pairs} pairs x {PAIRS.duration}, "
          f"alpha {PAIRS.alpha}, pair noise {100 * PAIRS.pair_noise:.1f} % ({ab_minutes:.0f} load-test minutes each)")
    print(f"histories: {N_BUILDS} builds, CV {100 * CV:.0f} % per operation, step on {SLOW_OP} at build {STEP_AT + 1}; "
          f"outliers: {100 * OUTLIER_SHARE:.0f} % of builds +15-30 %\n")
    header = (f"{'ops':>3} {'step':>5} {'outliers':>8} | {'gate':<13} | {'FA before':>9} | {'<=2 builds':>8} "
              f"{'<=15':>8} {'median':>6} | A/B per 100 builds")
    print(header)
    print("-" * len(header))
    for n_ops in (1, 8):
        for step, outliers in cells:
            rs = by[(n_ops, step, outliers)]
            for name in ("ci", "pipeline", "z233"):
                alarms = np.array([r[name] for r in rs])
                ab = (f"{100 * np.mean([r['ab_runs'] for r in rs]) / (N_BUILDS - FIRST_GATE):.1f}"
                      if name == "pipeline" else "")
                label = {"ci": "ult analyze", "pipeline": "pipeline+A/B", "z233": "z>2.33 last20"}[name]
                print(f"{n_ops:>3} {f'+{100 * step:.0f}%' if step else 'none':>5} {'5 %' if outliers else 'no':>8} | "
                      f"{label:<13} | {summarize(alarms, step)} | {ab}")
        print()
    print("Otava 0.8.0 default (anchors, 1 operation, CV 3 %): +5 % median 4 builds / p90 9, "
          "9.5 % of histories with a false alarm before the step")
    print(f"\n{len(jobs)} histories in {time.perf_counter() - started:.0f} s wall ({args.workers} workers)")


if __name__ == "__main__":
    main()
