"""How well does each zero-cost proxy rank the whole table, and what does it cost?

For every proxy in ``nas_gym.evaluators.proxy.PROXY_NAMES`` (params and flops are the
baselines ZiCo says to beat), the Spearman rank correlation between its score and the table's
mean validation accuracy over every architecture that trained ok, and its median seconds per
architecture next to the table's median training seconds. Also a vote (the sum of the ranks
of synflow, jacob_cov and snip, as in Abdelfattah et al. 2021), and two ceilings from the table
itself: seed 0 against seed 1 (a proxy cannot agree with the mean better than one training
run agrees with another, much) and validation against test.

An architecture for which a proxy is undefined (e.g. jacob_cov of a network without ReLU) is
ranked at the bottom, as the env's failure reward would treat it; the count is reported.

Usage: ``python scripts/bench_proxies.py [--config mnist1d-tiny] [--limit N] [--seed S]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
from scipy.stats import rankdata, spearmanr

from nas_gym.config import load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators.proxy import PROXY_NAMES, ProxyEvaluator
from nas_gym.evaluators.table import TableEvaluator

VOTE = ("synflow", "jacob_cov", "snip")


def _finite(scores: list[float]) -> np.ndarray:
    """NaN (undefined) and -inf become the bottom of the ranking."""
    return np.array([s if math.isfinite(s) or s == math.inf else -math.inf for s in scores])


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d-tiny")
    p.add_argument("--limit", type=int, default=0,
                   help="a random sample of N ok architectures (seeded by --seed; a quick check)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample")
    args = p.parse_args()

    cfg = load_config(args.config)
    table = TableEvaluator(cfg, seed="mean")
    results = [r for r in table.all_results() if r.ok]
    if args.limit:  # a random sample: the table's first rows are one corner of the space
        pick = np.random.default_rng(args.seed).choice(len(results), size=min(args.limit, len(results)), replace=False)
        results = [results[int(i)] for i in sorted(pick)]
    archs = [r.arch for r in results]
    y = np.array([r.val_acc for r in results])
    seeds = table.table.seeds
    rows = [table.table.rows[table.table.index[table.space.parse(a).key()]] for a in archs]
    train_median = statistics.median(r.train_seconds for r in results)
    data = load_dataset(cfg.data)

    lines: list[tuple[str, float, int, float | None]] = []
    scores: dict[str, np.ndarray] = {}
    for name in PROXY_NAMES:
        start = time.perf_counter()
        ev = ProxyEvaluator(cfg, name, data=data)
        proxy_results = ev.evaluate_many(archs)
        raw = [ev.raw_scores[a] if r.ok else math.nan for a, r in zip(archs, proxy_results, strict=True)]
        scores[name] = _finite(raw)
        seconds = statistics.median(r.train_seconds for r in proxy_results)
        lines.append((name, _rho(scores[name], y), sum(not r.ok for r in proxy_results), seconds))
        print(f"  {name}: {time.perf_counter() - start:.1f}s for {len(archs)} architectures", flush=True)
    vote = sum(rankdata(scores[n]) for n in VOTE)
    lines.append((f"vote({', '.join(VOTE)})", _rho(vote, y), 0, sum(line[3] or 0.0 for line in lines if line[0] in VOTE)))
    if len(seeds) >= 2:
        s0 = np.array([r["val_acc"][0] for r in rows])
        s1 = np.array([r["val_acc"][1] for r in rows])
        lines.append((f"ceiling: val seed {seeds[0]} vs seed {seeds[1]} (not vs mean)", _rho(s0, s1), 0, None))
    test = np.array([table.test_acc(a) for a in archs])
    lines.append(("ceiling: mean val vs mean test", _rho(y, test), 0, None))

    print(f"\n{cfg.name}: {len(archs)} architectures that trained ok; table median training "
          f"{train_median:.3f} s/arch (CPU seconds, one thread)\n")
    print("| score | Spearman rho vs mean val acc | undefined | median s/arch | cheaper than training |")
    print("|---|---:|---:|---:|---:|")
    for name, rho, undefined, seconds in lines:
        cost = "-" if seconds is None else f"{seconds * 1e3:.1f} ms"
        ratio = "-" if not seconds else f"{train_median / seconds:,.0f}x"
        print(f"| {name} | {rho:.3f} | {undefined} | {cost} | {ratio} |")


if __name__ == "__main__":
    main()
