"""Benchmark: the real noise of A/B confirmation pairs in the sandbox.

    .venv/bin/python -m ult_pipeline_tests.bench.confirmation [--pairs 10] [--duration 30s]
        [--out /tmp/abnoise/pairs.json] [--home DIR] [--dataset standard]
    .venv/bin/python -m ult_pipeline_tests.bench.confirmation --report /tmp/abnoise/pairs.json

A confirmation (`ult_pipeline/assets/ab_confirmation.py`) re-runs the baseline image and the
candidate image interleaved on one environment: per pair, redeploy as the baseline (A), run k6
for D seconds, redeploy as the candidate (B), run k6 for D seconds. Here A and B are the same
image (no latency knob), so every difference between them is noise.

`measure_pairs` starts a sandbox of its own (its home under --home, free ports), wipes and seeds
the dataset profile once (default `standard`, the pipeline's default, seed 1) and ANALYZEs it as
`seeded_dataset` does, then for each pair and role restarts the service exactly as
`SandboxDeployerResource.deploy` does for an image without knobs (`manager.restart_service`; the
deployer's ECS roll in moto is left out) and runs the pipeline's `run_load_test` with the
`default` load profile (the build's own profile in the asset; `default` unless ULT_LOAD_PROFILE is
set) and the duration overridden. Per run it records the role, pair index, per operation
p50/p95/p99 (of the successful requests, as ingested), count and error rate, the within-run errors
of log(p50/p95/p99) and the path of its requests.parquet; the run folders stay under the home.
It stops the sandbox it started at the end (also on Ctrl-C, SIGTERM or an exception) and removes
only its PostgreSQL data folder.

Printed per operation, for p50 and p95 (log units x 100, about percent):
  mean d, sd d     d = log(B) - log(A) per pair: its mean (order effect) and pair-to-pair sd
  sd rel           the sd of d_op - median over the OTHER operations of d_other (host factor out)
  boot, batch, max typical (median over runs) within-run standard error of log(p): the bootstrap of
                   the successful requests (`bootstrap_quantile_se` / p), the batch-means error of
                   `batch_log_errors` (relative to the other operations), and the larger of the two
  rel/(√2·max)     sd rel over what two independent runs with that within-run error would give
and the time per run including the restart, so the extra minutes of a confirmation follow.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ult_pipeline.analysis.ab import AbRun, PairConfig, confirm_operations
from ult_pipeline.analysis.detector import bootstrap_quantile_se
from ult_pipeline.analysis.history import ALL_OPERATIONS
from ult_pipeline.analysis.sampling import QUANTILES, batch_log_errors, successful_samples
from ult_pipeline.loadtest.profiles import duration_seconds, get_load_profile
from ult_pipeline.loadtest.run import json_safe, run_load_test
from ult_pipeline.loadtest.runner import K6Runner
from ult_pipeline.sandbox import manager, postgres
from ult_pipeline.sandbox.service_process import ServiceKnobs
from ult_pipeline.sandbox.settings import SandboxSettings
from ult_pipeline.seeding.dataset import generate
from ult_pipeline.seeding.identities import TokenSigner
from ult_pipeline.seeding.profiles import PROFILES
from ult_pipeline.seeding.run import prepare
from ult_pipeline.target_api.client import GraphQLClient
from ult_pipeline.target_db.statistics import refresh_statistics
from ult_pipeline.target_db.wipe import wipe
from ult_pipeline_tests.conftest import free_port

ROLES = (("A", "baseline"), ("B", "candidate"))  # the order of `run_ab_confirmation`
METRICS = ("p50", "p95")


def within_run_errors(requests_path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """operation -> metric -> {"boot": se, "batch": se} of log(percentile), from the run's successful requests."""
    frame = successful_samples(requests_path)
    batch = batch_log_errors(frame)
    groups = {str(op): g["duration_ms"].to_numpy() for op, g in frame.groupby("operation", observed=True)}
    groups[ALL_OPERATIONS] = frame["duration_ms"].to_numpy()
    out: dict[str, dict[str, dict[str, float]]] = {}
    for operation, samples in groups.items():
        for metric, q in QUANTILES.items():
            value = float(np.quantile(samples, q)) if len(samples) else float("nan")
            boot = bootstrap_quantile_se(samples, q) / value if len(samples) >= 2 and value > 0 else float("nan")
            out.setdefault(operation, {})[metric] = {"boot": boot, "batch": batch.get((operation, metric), float("nan"))}
    return out


def measure_pairs(
    pairs: int,
    duration_s: int,
    home: Path,
    *,
    dataset: str = "standard",
    seed: int = 1,
    load_profile: str = "default",
    on_run: Callable[[list[dict]], None] | None = None,
    log: Callable[[str], None] = print,
    candidate_knobs: ServiceKnobs | None = None,
) -> list[dict]:
    """Start a sandbox in `home`, seed it once, run `pairs` A,B pairs of `duration_s` each; one dict per run.

    `on_run` gets the runs so far after each run (to save them as they come). `candidate_knobs`: the
    B runs' service knobs (a slower candidate image); default: the same image as A.
    """
    home = Path(home)
    settings = SandboxSettings(home=home, port=free_port(), external_dsn=None, aws_port=free_port())
    profile = get_load_profile(load_profile).with_overrides(duration=f"{duration_s}s")
    runs: list[dict] = []
    started = time.monotonic()
    try:
        status = manager.up(settings)
        client = GraphQLClient(status.url, api_key=status.api_key)
        try:
            prepared = prepare(
                client=client, dataset=generate(PROFILES[dataset], seed), signer=TokenSigner(),
                identities_path=home / "identities.json", log=log,
                wipe=lambda: wipe(status.dsn, settings.environment,
                                  restart_service=lambda: manager.restart_service(settings)),
            )
        finally:
            client.close()
        if not prepared.counts_match:
            raise RuntimeError(f"seeded counts differ: {prepared.expected_counts} != {prepared.actual_counts}")
        tables, analyze_s = refresh_statistics(status.dsn)
        log(f"sandbox on port {settings.port}, {dataset} seeded and {tables} tables analysed "
            f"in {time.monotonic() - started:.1f} s")
        for pair in range(pairs):
            for role, image in ROLES:
                load_before = os.getloadavg()[0]
                t0 = time.monotonic()
                # = SandboxDeployerResource.deploy's restart with the image's knobs
                manager.restart_service(settings, (candidate_knobs if role == "B" else None) or ServiceKnobs())
                restart_s = time.monotonic() - t0
                out_dir = home / "runs" / f"{pair:02d}-{role}"
                result = run_load_test(
                    runner=K6Runner(), target_url=status.url, identities_path=prepared.identities_path,
                    profile=profile, out_dir=out_dir, dataset_hash=prepared.dataset_hash, image=image,
                    tags={"build": "abnoise", "confirmation": image},
                )
                total_s = time.monotonic() - t0
                ops = result.operations.set_index("operation")
                errors = within_run_errors(result.ingested.requests_path)
                runs.append({
                    "pair": pair, "role": role, "image": image,
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "restart_s": restart_s, "load_s": total_s - restart_s, "total_s": total_s,
                    "loadavg_1m_before": load_before, "loadavg_1m_after": os.getloadavg()[0],
                    "achieved_rate": result.achieved_rate, "dropped_iterations": result.ingested.dropped_iterations,
                    "interrupted": result.interrupted, "thresholds_crossed": result.k6.thresholds_crossed,
                    "run_dir": str(out_dir), "requests_path": str(result.ingested.requests_path),
                    "operations": {
                        str(op): {
                            "p50": float(row["p50"]), "p95": float(row["p95"]), "p99": float(row["p99"]),
                            "count": int(row["count"]), "error_rate": float(row["error_rate"]),
                            "log_se": errors.get(str(op), {}),
                        }
                        for op, row in ops.iterrows()
                    },
                })
                totals = ops.loc[ALL_OPERATIONS]
                log(f"pair {pair + 1}/{pairs} {role}: restart {restart_s:.1f} s, run {total_s:.1f} s, "
                    f"{int(totals['count'])} requests, errors {totals['error_rate']:.4f}, p50 {totals['p50']:.1f} ms, "
                    f"p95 {totals['p95']:.1f} ms, load {load_before:.2f}")
                if on_run is not None:
                    on_run(runs)
    finally:
        stopped = manager.down(settings)
        log(f"stopped: {', '.join(stopped) or 'nothing'}")
        if settings.pgdata.exists() and not postgres.is_running(settings.pgdata):
            shutil.rmtree(settings.pgdata, ignore_errors=True)
    return runs


def _log_value(run: dict, operation: str, metric: str) -> float:
    """log of a run's percentile; NaN when missing (saved as null: no successful request)."""
    value = run["operations"].get(operation, {}).get(metric)
    return float(np.log(value)) if value is not None and value > 0 else np.nan


def pair_noise(runs: list[dict]) -> pd.DataFrame:
    """One row per operation and metric: the pair-to-pair spread of d = log(B) - log(A) and the within-run errors."""
    rows = []
    by_pair = {(r["pair"], r["role"]): r for r in runs}
    pair_ids = sorted({p for p, role in by_pair if (p, "A") in by_pair and (p, "B") in by_pair})
    operations = sorted({op for r in runs for op in r["operations"]} - {ALL_OPERATIONS}) + [ALL_OPERATIONS]
    for metric in METRICS:
        d = pd.DataFrame(
            {p: {op: _log_value(by_pair[(p, "B")], op, metric) - _log_value(by_pair[(p, "A")], op, metric)
                 for op in operations}
             for p in pair_ids}
        ).T  # pairs x operations
        real = [op for op in operations if op != ALL_OPERATIONS]
        for op in operations:
            col = d[op].dropna()
            rel = (d[op] - d[[o for o in real if o != op]].median(axis=1)).dropna() if op != ALL_OPERATIONS else None
            per_run = [r["operations"].get(op, {}).get("log_se", {}).get(metric, {}) for r in runs]
            boot = np.array([e.get("boot", np.nan) for e in per_run], dtype=float)
            batch = np.array([e.get("batch", np.nan) for e in per_run], dtype=float)
            both = np.fmax(boot, batch)
            rows.append({
                "metric": metric, "operation": op, "pairs": len(col),
                "mean_d": col.mean() if len(col) else np.nan,
                "sd_d": col.std(ddof=1) if len(col) > 1 else np.nan,
                "sd_rel": rel.std(ddof=1) if rel is not None and len(rel) > 1 else np.nan,
                "boot_se": np.nanmedian(boot) if np.isfinite(boot).any() else np.nan,
                "batch_se": np.nanmedian(batch) if np.isfinite(batch).any() else np.nan,
                "max_se": np.nanmedian(both) if np.isfinite(both).any() else np.nan,
            })
    table = pd.DataFrame(rows)
    table["rel_over_sqrt2_se"] = table["sd_rel"] / (np.sqrt(2) * table["max_se"])
    return table


STEPS = (0.0, 0.05, 0.10, 0.20)
SHIPPED = PairConfig()


def _ab_run(run: dict, pair: int, role: str, slow_op: str | None, step: float) -> AbRun:
    """A measured run as the pipeline's AbRun, `slow_op` made `step` slower (its samples' errors kept)."""
    ops = {op: v for op, v in run["operations"].items() if op != ALL_OPERATIONS}
    values = {m: {op: v[m] * (1.0 + step if op == slow_op else 1.0) for op, v in ops.items()
                  if v.get(m) is not None and v[m] > 0} for m in METRICS}
    log_se = {m: {op: float(np.nanmax([v["log_se"].get(m, {}).get("boot", np.nan),
                                       v["log_se"].get(m, {}).get("batch", np.nan)]))
                  for op, v in ops.items() if v.get("log_se", {}).get(m)} for m in METRICS}
    return AbRun(pair, role, values, log_se)


def bootstrap_confirmations(runs: list[dict], config: PairConfig = SHIPPED, n: int = 2000,
                            seed: int = 0) -> pd.DataFrame:
    """The shipped paired test (`ab.confirm_operations`, `config`) on measured same-speed pairs.

    Each trial draws `config.pairs` of the measured A,B pairs with replacement, makes one operation
    (drawn at random) `step` slower in the B runs, and asks whether that operation is confirmed:
    the real pair noise and within-run errors, no model of them. One row per step: share confirmed.
    """
    by_pair = {(r["pair"], r["role"]): r for r in runs}
    pair_ids = sorted({p for p, _ in by_pair if (p, "A") in by_pair and (p, "B") in by_pair})
    operations = sorted({op for r in runs for op in r["operations"]} - {ALL_OPERATIONS})
    rng = np.random.default_rng(seed)
    rows = []
    for step in STEPS:
        confirmed = 0
        for _ in range(n):
            slow = str(rng.choice(operations))
            drawn = rng.choice(pair_ids, size=config.pairs, replace=True)
            ab = []
            for i, p in enumerate(drawn):
                ab.append(_ab_run(by_pair[(p, "A")], i, "baseline", None, 0.0))
                ab.append(_ab_run(by_pair[(p, "B")], i, "candidate", slow, step))
            confirmed += confirm_operations(ab, {slow: "p50"}, config)[slow].confirmed
        rows.append({"step": step, "confirmed": confirmed / n})
    return pd.DataFrame(rows)


def print_simulation(runs: list[dict], config: PairConfig = SHIPPED) -> None:
    sim = bootstrap_confirmations(runs, config)
    per_run = float(np.median([r["total_s"] for r in runs]))
    minutes = 2 * config.pairs * per_run / 60
    print(f"\nshipped A/B test (ab.PairConfig: {config.pairs} pairs x {config.duration}, alpha {config.alpha}, "
          f"pair-noise prior {100 * config.pair_noise:.0f} %) on these measured pairs, p50, 2,000 draws each:")
    for row in sim.itertuples():
        what = ("same speed: falsely confirmed" if row.step == 0
                else f"+{100 * row.step:.0f} % on one operation: confirmed")
        print(f"  {what:<40} {100 * row.confirmed:5.1f} %")
    print(f"  extra load-test minutes per confirmation: {minutes:.1f} (measured {per_run:.1f} s per run "
          f"incl. the restart; at these runs' length)")


def real_confirmations(count: int, slow_op: str, slowdown: float, home: Path, log: Callable[[str], None] = print,
                       config: PairConfig = SHIPPED) -> list[dict]:
    """`count` same-speed and `count` slowed confirmations for real, with the shipped defaults.

    Each is `config.pairs` A,B pairs of `config.duration` in a sandbox of its own (`measure_pairs`):
    the same image, or B with `slow_op` held `slowdown` (a fraction) of A's measured p50 longer,
    judged by the shipped `ab.confirm_operations` on `slow_op`'s p50. One dict per confirmation.
    """
    seconds = duration_seconds(config.duration)
    decisions = []
    reference = None
    for i in range(2 * count):
        slowed = i % 2 == 1  # interleaved: a busy period hits both kinds alike
        knobs = None
        if slowed:
            extra_ms = round(slowdown * (reference or 1.0), 3)
            knobs = ServiceKnobs(latency_ms={slow_op: extra_ms})
        runs = measure_pairs(config.pairs, seconds, home / f"c{i:02d}", candidate_knobs=knobs,
                             log=lambda _m: None)
        a_p50 = [r["operations"][slow_op]["p50"] for r in runs if r["role"] == "A"]
        reference = reference or float(np.median(a_p50))
        ab = [_ab_run(r, r["pair"], "baseline" if r["role"] == "A" else "candidate", None, 0.0) for r in runs]
        result = confirm_operations(ab, {slow_op: "p50"}, config)[slow_op]
        decisions.append({"slowed": slowed, "confirmed": result.confirmed, "change_pct": result.change_pct,
                          "p_value": result.p_value, "mdc_pct": result.mdc_pct})
        log(f"{'+' + format(100 * slowdown, '.0f') + ' % on ' + slow_op if slowed else 'same speed':<22} "
            f"{'CONFIRMED' if result.confirmed else 'cleared':<9} change {result.change_pct:+6.1f} %  "
            f"p {result.p_value:.2g}  could see {result.mdc_pct:.1f} %")
    return decisions


def print_report(runs: list[dict], meta: dict | None = None) -> None:
    table = pair_noise(runs)
    pct = ["mean_d", "sd_d", "sd_rel", "boot_se", "batch_se", "max_se"]
    header = {"mean_d": "mean d", "sd_d": "sd d", "sd_rel": "sd rel", "boot_se": "boot", "batch_se": "batch",
              "max_se": "max", "rel_over_sqrt2_se": "rel/(√2·max)"}
    if meta:
        print(f"\n{meta.get('pairs_done', '?')} pairs of {meta.get('duration_s', '?')} s, dataset "
              f"{meta.get('dataset', '?')}, load profile {meta.get('load_profile', '?')}; load average (1m, 5m, 15m) "
              f"at start {meta.get('loadavg_start')}, at end {meta.get('loadavg_end')}")
    for metric in METRICS:
        part = table[table["metric"] == metric].set_index("operation")
        shown = part[["pairs", *pct, "rel_over_sqrt2_se"]].copy()
        shown[pct] = shown[pct] * 100
        print(f"\n{metric}: d = log(B) - log(A), log units x 100 (about %); within-run errors are medians over runs")
        print(shown.rename(columns=header).to_string(float_format=lambda v: f"{v:.2f}", na_rep="-"))
        pooled = part.drop(index=ALL_OPERATIONS, errors="ignore")
        med = pooled[["mean_d", "sd_d", "sd_rel", "boot_se", "batch_se", "max_se", "rel_over_sqrt2_se"]].median()
        print(f"summary {metric} (median over {len(pooled)} operations): sd d {med['sd_d'] * 100:.2f}, "
              f"sd rel {med['sd_rel'] * 100:.2f}, boot {med['boot_se'] * 100:.2f}, batch {med['batch_se'] * 100:.2f}, "
              f"max {med['max_se'] * 100:.2f}, rel/(√2·max) {med['rel_over_sqrt2_se']:.2f}, "
              f"|mean d| {pooled['mean_d'].abs().median() * 100:.2f}")
    times = pd.DataFrame([{k: r[k] for k in ("role", "restart_s", "load_s", "total_s")} for r in runs])
    per_run = times["total_s"].median()
    print(f"\ntime per run incl. restart: median {per_run:.1f} s (restart {times['restart_s'].median():.1f} s, "
          f"k6 + ingest {times['load_s'].median():.1f} s; min {times['total_s'].min():.1f}, "
          f"max {times['total_s'].max():.1f}); per pair {2 * per_run:.1f} s, so a confirmation of N pairs adds "
          f"{2 * per_run / 60:.2f} x N minutes")
    loads = [r["loadavg_1m_before"] for r in runs]
    print(f"1-minute load average before the runs: min {min(loads):.2f}, median {np.median(loads):.2f}, "
          f"max {max(loads):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--duration", default="30s", help="k6 duration per run, e.g. 30s, 1m")
    parser.add_argument("--out", type=Path, default=Path("/tmp/abnoise/pairs.json"))
    parser.add_argument("--home", type=Path, default=None,
                        help="sandbox home and run folders (default: a new folder beside --out; keep it short, "
                             "PostgreSQL's socket path is limited)")
    parser.add_argument("--dataset", default="standard", choices=sorted(PROFILES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load-profile", default="default")
    parser.add_argument("--report", type=Path, default=None, help="only print the tables of a saved JSON")
    parser.add_argument("--real", type=int, default=0, metavar="N",
                        help="instead: N same-speed and N slowed confirmations for real (shipped defaults)")
    parser.add_argument("--slowdown", type=float, default=0.10, help="with --real: the slowed B runs' step")
    args = parser.parse_args()
    if args.real:
        home = args.home or Path(tempfile.mkdtemp(prefix="ult-abr-"))
        decisions = real_confirmations(args.real, "userNode", args.slowdown, home,
                                       log=lambda m: print(m, flush=True))
        slowed = [d["confirmed"] for d in decisions if d["slowed"]]
        same = [d["confirmed"] for d in decisions if not d["slowed"]]
        print(f"slowed confirmed {sum(slowed)} of {len(slowed)}; same speed falsely confirmed {sum(same)} of {len(same)}")
        return
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        print_report(saved["runs"], saved.get("meta"))
        print_simulation(saved["runs"])
        return

    args.out.parent.mkdir(parents=True, exist_ok=True)
    home = args.home or Path(tempfile.mkdtemp(prefix="ult-ab-", dir=args.out.parent))
    home.mkdir(parents=True, exist_ok=True)
    meta = {
        "pairs": args.pairs, "duration_s": duration_seconds(args.duration), "dataset": args.dataset,
        "seed": args.seed, "load_profile": args.load_profile, "home": str(home),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
    }

    def save(runs: list[dict]) -> None:
        meta["pairs_done"] = len({r["pair"] for r in runs if r["role"] == "B"})
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(json_safe({"meta": meta, "runs": runs}), indent=1, allow_nan=False))
        tmp.replace(args.out)

    def terminate(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)  # so `kill` stops the sandbox too
    print(f"home {home}; load average at start {meta['loadavg_start']}", flush=True)
    runs = measure_pairs(args.pairs, meta["duration_s"], home, dataset=args.dataset, seed=args.seed,
                         load_profile=args.load_profile, on_run=save, log=lambda m: print(m, flush=True))
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["ended_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    save(runs)
    print_report(runs, meta)
    print_simulation(runs)
    print(f"\nsaved {args.out}; run folders under {home / 'runs'}")


if __name__ == "__main__":
    main()
