"""How well does the latency table predict the measured latency of whole networks?

Profiles the preset on this machine (``nas_gym.latency.profile.profile``: every layer, then the
line fitted on ``--fit-archs`` networks), then samples ``--archs`` other architectures (seeded,
distinct, none of those the line was fitted on), times each whole network the way the table's
layers were timed (batch 1, one torch thread, warm-up, median of ``--repeats`` interleaved
rounds) and compares with the prediction: the share within +-10% (nn-Meter's measure), the
median absolute error, and the rank correlations a search cares about (Spearman, Kendall tau).
The networks are timed twice, and the second timing against the first is a reference (not a
ceiling: a prediction from medians of many runs per layer can agree with one timing better than
another single timing does). The
machine's speed drifts between stretches of seconds (a shared VM's neighbours, frequency), so the
fit's own networks are timed again beside the compared ones; their ratio to the profiled times is
the drift, and "predicted x drift" is the model's error with the drift taken out.

Timings depend on what else runs: run it on a quiet machine, and compare numbers taken in one run.

Usage: ``python scripts/bench_latency.py [--config mnist1d] [--archs 100] [--repeats 100] [--seed 0]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nas_gym.config import load_config
from nas_gym.latency.profile import THREADS, profile, sample_distinct, time_interleaved
from nas_gym.training.train import resolve_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d")
    p.add_argument("--archs", type=int, default=100, help="architectures compared (held out from the fit)")
    p.add_argument("--repeats", type=int, default=100, help="timed runs per layer and per network (median kept)")
    p.add_argument("--fit-archs", type=int, default=30, help="whole networks the intercept and scale are fitted on")
    p.add_argument("--seed", type=int, default=0, help="seed of the fit's sample; the compared sample uses seed + 1")
    p.add_argument("--out", type=Path, default=None, help="also save the profiled table here")
    args = p.parse_args()

    # The table is built here, not read: the preset's own reward cost does not matter.
    cfg = load_config(args.config, {"reward.cost": "params"})
    table = profile(cfg, repeats=args.repeats, fit_archs=args.fit_archs, seed=args.seed)
    if args.out:
        table.save(args.out)
    space, shape, device = cfg.search_space(), cfg.input_shape, resolve_device(cfg.runtime.device)
    fitted = set(table.fit["archs"])
    archs = [a for a in sample_distinct(space, args.archs + len(fitted), np.random.default_rng(args.seed + 1))
             if a.text() not in fitted][:args.archs]

    networks = [(space.build_model(a, shape, cfg.num_classes), shape) for a in archs]
    # The fit's networks are timed again in the same rounds as the compared ones: how much the
    # machine's speed drifted since the profile (the same networks, now against then).
    fit_networks = [(space.build_model(space.parse(a), shape, cfg.num_classes), shape) for a in table.fit["archs"]]
    start = time.perf_counter()
    times = time_interleaved(networks + fit_networks, device, warmup=table.warmup, repeats=args.repeats)
    measure_seconds = time.perf_counter() - start
    measured = np.array(times[:len(networks)])
    drift = float(np.median(np.array(times[len(networks):]) / np.array(table.fit["measured_ms"])))
    again = np.array(time_interleaved(networks, device, warmup=table.warmup, repeats=args.repeats))
    predicted = np.array([table.predict_ms(a) for a in archs])

    print(f"\n{cfg.name}: {len(archs)} architectures (seed {args.seed + 1}) on {table.cpu}, device {table.device}, "
          f"torch {table.torch}, {THREADS} thread, batch 1, median of {args.repeats} runs; "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"table: {len(table.entries)} layer entries, line fitted on {len(fitted)} networks: "
          f"{table.scale:.3f} x sum + {table.intercept_ms * 1e3:.1f} us\n")
    print(f"drift since the profile: the fit's networks now take {drift:.3f}x their profiled time\n")
    error, noise = (predicted - measured) / measured, (again - measured) / measured
    corrected = (predicted * drift - measured) / measured
    rows = [(name, f(error), f(corrected), f(noise)) for name, f in (
        ("within +-10%", lambda e: f"{np.mean(np.abs(e) <= 0.10):.1%}"),
        ("within +-5%", lambda e: f"{np.mean(np.abs(e) <= 0.05):.1%}"),
        ("median abs error", lambda e: f"{statistics.median(np.abs(e)):.1%}"),
        ("mean error (bias)", lambda e: f"{np.mean(e):+.1%}"))]
    rows += [(name, f"{rank(predicted, measured).statistic:.3f}", "(same)", f"{rank(again, measured).statistic:.3f}")
             for name, rank in (("Spearman rho", spearmanr), ("Kendall tau", kendalltau))]
    rows += [("measured latency (min / median / max)",
              f"{measured.min():.3f} / {np.median(measured):.3f} / {measured.max():.3f} ms", "", ""),
             ("profile time (layers + fit)", f"{table.profile_seconds:.1f} s", "", ""),
             (f"timing the {len(archs)} networks once", f"{measure_seconds:.1f} s", "", "")]
    print("| measure | predicted vs measured | predicted x drift vs measured | measured again vs measured (reference) |\n"
          "|---|---:|---:|---:|")
    for name, *values in rows:
        print(f"| {name} | {' | '.join(values)} |")


if __name__ == "__main__":
    main()
