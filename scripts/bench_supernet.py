"""Weight sharing, measured: supernet scoring speed, supernet rankings against real training,
and DARTS / ENAS against random search and regularized evolution at similar compute.

``speed``: trains a supernet (``--epochs``), then scores ``--archs`` distinct random
architectures one call at a time, as the env asks (batch-norm recalibration included), on one
torch thread; prints the median of ``--repeats`` rates.

``rank``: Kendall tau and Spearman between supernet scores and real validation accuracy, for
each supernet budget in ``--epochs``, beside the zero-cost proxies and parameter count scored on
the same architectures. The reference is the preset's shipped table when one fits (every
architecture, mean over the table's seeds), else ``--sample`` architectures drawn uniformly and
trained for real with the preset's recipe (mean of seeds 0 and 1; cached in ``--cache``). Also
how well those two seeds agree with each other: a reference for the noise in the ranking (not a
ceiling: a scorer of the mean can agree with the mean better than one seed does).

``search``: for each seed, DARTS and ENAS (``--episodes`` episodes; ``--evaluator`` real training,
or the shipped table, scores what they return), then random search and regularized evolution, once
at each one-shot agent's own budget: as many episodes as it takes to spend the compute that agent
spent (its supernet training in CPU-seconds, as the table charges each training). Each run has its own cache file, so
every run pays for every training it does. Reports per run the returned architecture, its test
accuracy (the table's, or one training with the preset's recipe), its op histogram, seconds
charged and wall time.

Usage: ``python scripts/bench_supernet.py speed|rank|search --config PRESET [options]``
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from nas_gym.config import Config, load_config
from nas_gym.data import load_dataset
from nas_gym.evaluators.proxy import ProxyEvaluator
from nas_gym.evaluators.supernet import SupernetEvaluator
from nas_gym.runs.runlog import read_records
from nas_gym.runs.search import SearchInterrupted, run_search
from nas_gym.spaces.cell.space import CELL_OPS, Cell
from nas_gym.training.train import evaluate_architecture


def _supernet(cfg: Config, epochs: int, data, val_samples: int | None = None) -> SupernetEvaluator:
    overrides = {"evaluator.kind": "supernet", "evaluator.supernet_epochs": epochs}
    if val_samples:
        overrides["evaluator.supernet_val_samples"] = val_samples
    evaluator = SupernetEvaluator(load_config(cfg, overrides), data=data)
    start = time.perf_counter()
    evaluator.supernet()
    print(f"supernet {cfg.name}, {epochs} epochs: trained or loaded in {time.perf_counter() - start:.1f} s "
          f"(training took {evaluator.train_seconds:.1f} s) -> {evaluator.store}", flush=True)
    return evaluator


def distinct_sample(space, n: int, seed: int) -> list:
    rng, seen, out = np.random.default_rng(seed), set(), []
    while len(out) < n:
        arch = space.sample(rng)
        if arch.key() not in seen:
            seen.add(arch.key())
            out.append(arch)
    return out


# -- speed -------------------------------------------------------------------------------------------
def speed(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    data = load_dataset(cfg.data)
    evaluator = _supernet(cfg, args.epochs, data, args.val_samples)
    rates, cpu_rates = [], []
    for r in range(args.repeats):
        archs = distinct_sample(evaluator.space, args.archs, seed=100 + r)
        evaluator._scored.clear()  # every repeat scores afresh
        start, cpu = time.perf_counter(), time.process_time()
        for arch in archs:
            evaluator.evaluate(arch)
        rates.append(len(archs) / (time.perf_counter() - start))
        cpu_rates.append(len(archs) / (time.process_time() - cpu))
    # On a shared machine wall time counts other processes' turns; CPU time is what this process
    # used, close to the wall time of an idle core.
    print(f"{cfg.name}: {statistics.median(rates):.0f} architectures/s wall, {statistics.median(cpu_rates):.0f} per "
          f"CPU-second (medians of {args.repeats} x {args.archs}; each {len(evaluator._scoring_batches()[1])} validation "
          f"+ 128 calibration samples; 1 thread); wall: {', '.join(f'{x:.0f}' for x in rates)}")


# -- rank --------------------------------------------------------------------------------------------
def reference(cfg: Config, data, sample: int, cache: str, limit: int | None = None) -> tuple[list, np.ndarray, str, str]:
    """Architectures, their real validation accuracy, where they come from, and how well two
    training seeds agree on them (a reference for the ranking's noise). With a
    table and ``limit``, a seeded uniform sample of ``limit`` of its architectures."""
    try:
        from nas_gym.evaluators.table import TableEvaluator

        table = TableEvaluator(cfg, seed="mean")
    except Exception as e:  # no table fits this preset
        print(f"no table ({type(e).__name__}): training {sample} sampled architectures", flush=True)
    else:
        ok = [r for r in table.all_results() if r.ok]
        if limit is not None and limit < len(ok):
            ok = [ok[i] for i in sorted(np.random.default_rng(12345).choice(len(ok), limit, replace=False))]
        archs = [table.space.parse(r.arch) for r in ok]
        a, b = (TableEvaluator(cfg, seed=s).evaluate_many(archs) for s in table.table.seeds[:2])
        ceiling = _taus(np.array([r.val_acc for r in a]), np.array([r.val_acc for r in b]))
        return archs, np.array([r.val_acc for r in ok]), f"table (mean over seeds), {len(ok)} of its architectures", ceiling
    from nas_gym.evaluators.training import TrainingEvaluator

    archs = distinct_sample(cfg.search_space(data.input_shape), sample, seed=12345)
    accs = []
    for seed in (0, 1):
        train_cfg = load_config(cfg, {"evaluator.kind": "train", "evaluator.cache": cache, "train.seed": seed})
        evaluator = TrainingEvaluator(train_cfg, data=data)
        accs.append(np.array([r.val_acc for r in evaluator.evaluate_many(archs)]))
        print(f"reference seed {seed}: {evaluator.stats.trained} trained, {evaluator.stats.cache_hits} cached, "
              f"{evaluator.stats.train_seconds:.0f} s", flush=True)
    return archs, (accs[0] + accs[1]) / 2, f"{len(archs)} sampled architectures trained (mean of seeds 0, 1)", \
        _taus(accs[0], accs[1])


def _taus(score: np.ndarray, truth: np.ndarray) -> str:
    return f"Kendall {kendalltau(score, truth).statistic:+.3f}  Spearman {spearmanr(score, truth).statistic:+.3f}"


def rank(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    data = load_dataset(cfg.data)
    archs, truth, source, ceiling = reference(cfg, data, args.sample, args.cache, args.limit)
    print(f"{cfg.name}: {len(archs)} architectures, reference: {source}; seed 0 vs seed 1: {ceiling}")
    for epochs in args.epochs:
        evaluator = _supernet(cfg, epochs, data, args.val_samples)
        start = time.perf_counter()
        scores = np.array([r.val_acc for r in evaluator.evaluate_many(archs)])
        print(f"  supernet {epochs:>3} epochs: {_taus(scores, truth)}  (mean score {scores.mean():.3f}, "
              f"scoring {len(archs) / (time.perf_counter() - start):.0f}/s)", flush=True)
    for name in args.proxies:
        proxy = ProxyEvaluator(cfg, name, data=data)
        scores = np.array([r.val_acc for r in proxy.evaluate_many(archs)])
        print(f"  {name:>18}: {_taus(scores, truth)}", flush=True)


# -- search ------------------------------------------------------------------------------------------
def _run(cfg: Config, agent: str, seed: int, logdir: Path, episodes: int, budget_s: float | None = None) -> dict:
    """One search with its own cache file; with ``budget_s``, stopped once the seconds charged
    reach it (``episodes`` is then only a cap)."""
    own = load_config(cfg, {"evaluator.cache": str(logdir / f"{agent}-s{seed}.sqlite")})

    charged = [0.0]

    def stop(log) -> None:
        charged[0] = log.evaluator.stats.train_seconds
        if budget_s is not None and charged[0] >= budget_s:
            raise KeyboardInterrupt

    start = time.perf_counter()
    try:
        run_dir = run_search(own, agent, episodes, seed, logdir, on_episode=stop, checkpoint_every=10).run_dir
    except SearchInterrupted as e:
        run_dir = e.run_dir
    wall = time.perf_counter() - start
    records = [r for r in read_records(run_dir) if r.status == "ok"]
    # one-shot agents answer with their last architecture; the others with their best by validation
    pick = records[-1] if agent in ("darts", "enas") else max(records, key=lambda r: r.val_acc)
    return {"agent": agent, "seed": seed, "evaluations": len(records), "arch": pick.arch, "val_acc": pick.val_acc,
            "charged_s": round(charged[0], 1), "wall_s": round(wall, 1)}


def _test_acc(cfg: Config, data, space, arch) -> float | None:
    """Test accuracy at the preset's recipe: the table's mean over seeds, else one training (seed 0)."""
    if cfg.evaluator.kind == "table":
        from nas_gym.evaluators.table import TableEvaluator

        return TableEvaluator(cfg, seed="mean").test_acc(arch)
    return evaluate_architecture(arch, data, cfg.train, cfg.runtime, want_test=True, space=space).test_acc


def search(args: argparse.Namespace) -> None:
    cfg = load_config(args.config, {"evaluator.kind": args.evaluator})
    data = load_dataset(cfg.data)
    space = cfg.search_space(data.input_shape)
    logdir = Path(args.logdir or tempfile.mkdtemp(prefix="bench_supernet_"))
    rows = []
    labels = ["darts", "enas"]
    for seed in args.seeds:
        first = len(rows)
        one_shot = [_run(cfg, a, seed, logdir, args.episodes) for a in ("darts", "enas")]
        rows += one_shot
        for spent in one_shot:  # each one-shot agent against random and evolution at its own budget
            for a in ("random", "evolution"):
                row = _run(cfg, a, seed, logdir / f"at-{spent['agent']}", 100_000, spent["charged_s"])
                row["agent"] = f"{a}@{spent['agent']}"
                rows.append(row)
                labels += [row["agent"]] if row["agent"] not in labels else []
        for row in rows[first:]:
            arch = space.parse(row["arch"])
            row["test_acc"] = _test_acc(cfg, data, space, arch)
            names = [CELL_OPS[op] for op in arch.ops] if isinstance(arch, Cell) else [op.text() for op in arch.ops]
            row["ops"] = dict(collections.Counter(names))
            print(json.dumps(row), flush=True)
    print("\nagent              mean test acc   mean charged s   mean wall s")
    for agent in labels:
        mine = [r for r in rows if r["agent"] == agent]
        print(f"{agent:<17} {np.mean([r['test_acc'] for r in mine]):>14.4f} {np.mean([r['charged_s'] for r in mine]):>16.1f}"
              f" {np.mean([r['wall_s'] for r in mine]):>13.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--config", default="mnist1d-cell")
    s.add_argument("--epochs", type=int, default=5)
    s.add_argument("--archs", type=int, default=200)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--val-samples", type=int, default=None, help="override evaluator.supernet_val_samples")
    r = sub.add_parser("rank")
    r.add_argument("--config", default="mnist1d-tiny")
    r.add_argument("--epochs", type=int, nargs="*", default=[10, 30], help="supernet epochs to score (none: only the proxies)")
    r.add_argument("--sample", type=int, default=50, help="architectures trained as reference when no table fits")
    r.add_argument("--limit", type=int, default=None, help="with a table: a seeded sample of this many of its architectures")
    r.add_argument("--cache", default="auto", help="evaluation cache for the reference trainings")
    r.add_argument("--proxies", nargs="*", default=["params", "flops", "synflow", "jacob_cov"])
    r.add_argument("--val-samples", type=int, default=None, help="override evaluator.supernet_val_samples")
    q = sub.add_parser("search")
    q.add_argument("--config", default="mnist1d-cell")
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    q.add_argument("--episodes", type=int, default=20)
    q.add_argument("--logdir", default=None)
    q.add_argument("--evaluator", default="train", choices=["train", "table"], help="what scores the runs' picks")
    args = p.parse_args()
    {"speed": speed, "rank": rank, "search": search}[args.command](args)


if __name__ == "__main__":
    main()
