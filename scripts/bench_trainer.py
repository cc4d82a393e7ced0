"""Benchmark the trainer on this machine: speed, distance to the hardware, rank fidelity, memory.

Four questions, answered in one run so the numbers are comparable:

1. Speed. For a few architectures from small to large, seconds per evaluation for
   (a) ``nas_gym.training.train.evaluate_architecture``, (b) the trainer as it was before issue 16
   (``previous_trainer``: 1-D layers as built, ``torch.optim.AdamW`` with ``foreach``, a gather
   per step; the same recipe and batches) and (c) a textbook loop over
   ``DataLoader(TensorDataset)``. Runs are interleaved and repeated, and the median is reported,
   because another process can take a core at any moment. CPU seconds are shown next to wall
   seconds: with one thread they estimate the uncontended time.
2. Distance to the hardware. Beside each time, the achieved GFLOP/s, counted as 2 FLOPs per
   multiply-accumulate and 3 forward passes' worth per training sample (forward, then the
   backward's gradients with respect to inputs and to weights) plus one forward per validation
   sample; batch norm, activations, pooling and the optimiser are not counted. The ratio is to
   a single-thread 1024 x 1024 float32 matmul measured in the same run (both by CPU seconds).
3. Rank fidelity. Spearman correlation between validation accuracy at the preset's budget and
   at a 4x longer one, over architectures sampled uniformly from the preset's space. A cheap
   budget is only useful if it orders architectures as a longer one would.
4. Peak memory (max RSS) of a fresh process that loads the data and evaluates one architecture.

Usage: ``python scripts/bench_trainer.py [--quick] [--workers 2] [--set train.epochs=4 ...]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nas_gym.config import Config, RuntimeConfig, TrainConfig, load_config, parse_overrides
from nas_gym.data import Dataset, load_dataset
from nas_gym.spaces.base import SearchSpace
from nas_gym.spaces.layer_chain.chain import Chain, count_flops
from nas_gym.spaces.layer_chain.model import build_model
from nas_gym.training.train import evaluate_architecture, lr_factor

SPEED_ARCHS = (
    "conv3-16|maxpool|conv3-32",
    "conv3-32|conv3-32|maxpool|conv5-32",
    "res3-32|conv3-64|conv3-16|conv3-16|maxpool|dropout0.2",
    "conv5-64|res3-64|res3-64|conv5-64|res3-64|conv3-64",
)
RUNTIME = RuntimeConfig(device="cpu", threads=1)


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    val_acc: float


def _timed(fn: Callable[[], float]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    acc = fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu, acc)


def _seeded_model(arch: Chain, data: Dataset, seed: int, space: SearchSpace | None = None) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return (space.build_model if space else build_model)(arch, data.input_shape, data.num_classes)


@torch.no_grad()
def _val_acc(model: nn.Module, data: Dataset) -> float:
    model.eval()
    return (model(data.x_val).argmax(1) == data.y_val).float().mean().item()


def ours(arch: Chain, data: Dataset, cfg: TrainConfig) -> float:
    return evaluate_architecture(arch, data, cfg, RUNTIME).val_acc


def dataloader_loop(arch: Chain, data: Dataset, cfg: TrainConfig) -> float:
    """What a torchvision-style script does: DataLoader, LambdaLR, the same recipe, the
    optimiser's defaults."""
    torch.set_num_threads(1)
    model = _seeded_model(arch, data, cfg.seed)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=cfg.batch_size, shuffle=True,
                        drop_last=True, generator=torch.Generator().manual_seed(cfg.seed))
    total = len(loader) * cfg.epochs
    warmup = int(cfg.warmup_fraction * total)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup, cfg.schedule))
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    for _ in range(cfg.epochs):
        model.train()
        for xb, yb in loader:
            loss = criterion(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return _val_acc(model, data)


def previous_trainer(arch: Chain, data: Dataset, cfg: TrainConfig, space: SearchSpace | None = None) -> float:
    """The trainer before issue 16, kept as the baseline of its speed-ups: the network as built
    (1-D layers), ``torch.optim.AdamW(foreach=True)``, one gather per step, the loss summed on
    the device, the same seeds, batches and schedule. Gives the accuracies it gave."""
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(1)
        model = _seeded_model(arch, data, cfg.seed, space)
        torch.manual_seed(cfg.seed)
        n = len(data.y_train)
        b = min(cfg.batch_size, n)
        steps = n // b
        total, warmup = steps * cfg.epochs, int(cfg.warmup_fraction * steps * cfg.epochs)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        gen, step = torch.Generator().manual_seed(cfg.seed), 0
        for _ in range(cfg.epochs):
            model.train()
            perm = torch.randperm(n, generator=gen)
            loss_sum = torch.zeros(())
            for i in range(steps):
                idx = perm[i * b : (i + 1) * b]
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * lr_factor(step, total, warmup, cfg.schedule)
                loss = criterion(model(data.x_train[idx]), data.y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach()
                step += 1
            loss_sum.item()
        return _val_acc(model, data)


def matmul_gflops(repeats: int = 9) -> float:
    """Single-thread float32 1024 x 1024 matmul, GFLOP/s by CPU seconds (median of repeats)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1024, 1024, generator=g), torch.randn(1024, 1024, generator=g)
    a @ b
    rates = []
    for _ in range(repeats):
        cpu = time.process_time()
        for _ in range(5):
            a @ b
        rates.append(5 * 2 * 1024**3 / (time.process_time() - cpu) / 1e9)
    torch.set_num_threads(previous)
    return statistics.median(rates)


def counted_flops(mac: int, data: Dataset, cfg: TrainConfig) -> float:
    """FLOPs of one evaluation as the module docstring counts them."""
    n = len(data.y_train)
    trained = (n // min(cfg.batch_size, n)) * min(cfg.batch_size, n) * cfg.epochs
    return 2.0 * mac * (3 * trained + len(data.y_val))


def _paired(a: list[Timing], b: list[Timing], field: str) -> float:
    """Median of per-repeat ratios: runs of one repeat share a time window, so the machine's
    drifting speed (seen here: +-15% between identical runs) cancels out of each ratio."""
    return statistics.median(getattr(x, field) / getattr(y, field) for x, y in zip(a, b, strict=True))


def speed_table(data: Dataset, cfg: TrainConfig, repeats: int) -> None:
    loops = {"ours": ours, "previous": previous_trainer, "dataloader": dataloader_loop}
    print(f"\n## Speed: {cfg.epochs} epochs, batch {cfg.batch_size}, 1 thread, median of {repeats} "
          "(wall s / CPU s per evaluation; ratios: median of paired per-repeat ratios, wall (CPU); "
          "GFLOP/s and % of matmul by CPU seconds)")
    previous = torch.get_num_threads()
    for fn in loops.values():  # pay the process's one-off start-up costs before any timing
        fn(Chain.parse(SPEED_ARCHS[0]), data, cfg.model_copy(update={"epochs": 1}))
    peak = matmul_gflops()
    print(f"single-thread 1024x1024 matmul: {peak:.1f} GFLOP/s")
    print(f"{'architecture':55s} {'MMAC':>6s} {'ours':>11s} {'previous':>11s} {'dataloader':>11s} "
          f"{'evals/h':>7s} {'prev/ours':>11s} {'dl/ours':>11s} {'GFLOP/s ours (prev)':>20s} "
          f"{'% matmul':>13s} {'val':>5s}")
    names = list(loops)
    for text in SPEED_ARCHS:
        arch = Chain.parse(text)
        runs: dict[str, list[Timing]] = {k: [] for k in loops}
        for r in range(repeats):  # interleaved and rotated, so a busy spell hits all three alike
            for name in names[r % 3 :] + names[: r % 3]:
                runs[name].append(_timed(partial(loops[name], arch, data, cfg)))
        torch.set_num_threads(previous)
        wall = {k: statistics.median(t.wall for t in v) for k, v in runs.items()}
        cpu = {k: statistics.median(t.cpu for t in v) for k, v in runs.items()}
        cell = {k: f"{wall[k]:4.2f}/{cpu[k]:4.2f}" for k in loops}
        mac = count_flops(arch, data.input_shape, data.num_classes)
        rate = {k: counted_flops(mac, data, cfg) / cpu[k] / 1e9 for k in ("ours", "previous")}
        ratio = {k: f"{_paired(runs[k], runs['ours'], 'wall'):4.2f} ({_paired(runs[k], runs['ours'], 'cpu'):4.2f})"
                 for k in ("previous", "dataloader")}
        print(f"{text:55s} {mac / 1e6:6.2f} {cell['ours']:>11s} {cell['previous']:>11s} {cell['dataloader']:>11s} "
              f"{3600 / wall['ours']:7.0f} {ratio['previous']:>11s} {ratio['dataloader']:>11s} "
              f"{rate['ours']:9.1f} ({rate['previous']:5.1f}) {100 * rate['ours'] / peak:5.0f}% "
              f"({100 * rate['previous'] / peak:3.0f}%) {runs['ours'][0].val_acc:5.3f}")


def _fidelity_job(job: tuple[str, str, dict, int]) -> tuple[float, float, float, float]:
    preset, text, overrides, epochs = job
    cfg = load_config(preset, overrides)
    if preset not in _DATA:
        _DATA[preset] = load_dataset(cfg.data)
    data = _DATA[preset]
    train = cfg.train.model_copy(update={"epochs": epochs})
    cpu = time.process_time()
    r = evaluate_architecture(Chain.parse(text), data, train, RUNTIME)
    return r.val_acc, r.train_seconds, time.process_time() - cpu, float(r.params)


_DATA: dict[str, Dataset] = {}  # per worker process: load the dataset once, not once per job


def rank_fidelity(cfg: Config, preset: str, overrides: dict, n_archs: int, workers: int, verbose: bool,
                  arch_seed: int = 0) -> None:
    space = cfg.search_space()
    rng = np.random.default_rng(arch_seed)
    archs = [space.sample(rng).text() for _ in range(n_archs)]
    short, long = cfg.train.epochs, 4 * cfg.train.epochs
    jobs = [(preset, a, overrides, e) for e in (short, long) for a in archs]
    print(f"\n## Rank fidelity: {n_archs} architectures sampled with seed {arch_seed}, {short} vs {long} epochs, "
          f"{workers} worker(s)")
    start = time.perf_counter()
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_fidelity_job, jobs, chunksize=1)
    else:
        results = [_fidelity_job(j) for j in jobs]
    elapsed = time.perf_counter() - start
    acc_s = np.array([r[0] for r in results[:n_archs]])
    acc_l = np.array([r[0] for r in results[n_archs:]])
    secs = np.array([r[1] for r in results[:n_archs]])
    cpu = np.array([r[2] for r in results[:n_archs]])
    params = np.array([r[3] for r in results[:n_archs]])
    flops = np.array([count_flops(Chain.parse(a), cfg.input_shape, cfg.num_classes) for a in archs])
    if verbose:
        print(f"{'architecture':55s} {'MMAC':>6s} {'val@' + str(short):>7s} {'val@' + str(long):>7s} {'wall s':>6s} {'cpu s':>6s}")
        for i in np.argsort(-acc_l):
            print(f"{archs[i]:55s} {flops[i] / 1e6:6.2f} {acc_s[i]:7.3f} {acc_l[i]:7.3f} {secs[i]:6.2f} {cpu[i]:6.2f}")
    print(f"spearman(val@{short}, val@{long}) = {spearmanr(acc_s, acc_l)[0]:.3f}")
    print(f"baselines: spearman(params, val@{long}) = {spearmanr(params, acc_l)[0]:.3f}, "
          f"spearman(flops, val@{long}) = {spearmanr(flops, acc_l)[0]:.3f}")
    print(f"val@{short}: mean {acc_s.mean():.3f} [{acc_s.min():.3f}, {acc_s.max():.3f}]; "
          f"val@{long}: mean {acc_l.mean():.3f} [{acc_l.min():.3f}, {acc_l.max():.3f}]")
    print(f"seconds per evaluation at {short} epochs (1 thread each): mean {secs.mean():.2f}, "
          f"median {np.median(secs):.2f}, max {secs.max():.2f} -> {3600 / secs.mean():.0f} evaluations/hour "
          f"per worker ({workers * 3600 / secs.mean():.0f} with {workers} workers); "
          f"CPU seconds mean {cpu.mean():.2f} -> {3600 / cpu.mean():.0f}/hour uncontended")
    print(f"(whole fidelity run: {elapsed:.0f} s wall)")


def _rss_mib() -> float:
    """Current resident set size (Linux); nan elsewhere."""
    try:
        with open("/proc/self/status") as f:
            return next(float(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return float("nan")


def _memory_job(preset: str, overrides: dict, text: str) -> tuple[float, float, float, float]:
    cfg = load_config(preset, overrides)
    data = load_dataset(cfg.data)
    peak_before, rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, _rss_mib()  # KiB on Linux
    evaluate_architecture(Chain.parse(text), data, cfg.train, RUNTIME)
    return peak_before, rss_before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, _rss_mib()


def peak_memory(preset: str, overrides: dict) -> None:
    text = SPEED_ARCHS[-1]
    with mp.get_context("spawn").Pool(1) as pool:
        peak_before, rss_before, peak_after, rss_after = pool.apply(_memory_job, (preset, overrides, text))
    print(f"\n## Memory of one evaluation of {text} in a fresh process (MiB)")
    print(f"peak RSS (getrusage): {peak_before:.0f} after imports + data, {peak_after:.0f} after the evaluation")
    print(f"current RSS: {rss_before:.0f} before, {rss_after:.0f} after (the evaluation's share: {rss_after - rss_before:+.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist1d")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset field, e.g. train.epochs=4 (repeatable)")
    parser.add_argument("--quick", action="store_true", help="2 repeats, 12 architectures: a smoke run, not a verdict")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--archs", type=int, default=32, help="architectures for rank fidelity (>= 30 for a verdict)")
    parser.add_argument("--arch-seed", type=int, default=0, help="seed of the sampled architectures (0: the reference set)")
    parser.add_argument("--workers", type=int, default=1, help="processes for the fidelity run (1 thread each)")
    parser.add_argument("--verbose", action="store_true", help="print every architecture of the fidelity run")
    parser.add_argument("--skip", action="append", default=[], choices=["speed", "fidelity", "memory"])
    args = parser.parse_args()
    repeats, n_archs = (2, 12) if args.quick else (args.repeats, args.archs)

    overrides = parse_overrides(args.overrides)
    cfg = load_config(args.preset, overrides)
    data = load_dataset(cfg.data)
    print(f"preset {cfg.name}: {cfg.train.model_dump()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available, trainer uses 1")
    if "speed" not in args.skip:
        speed_table(data, cfg.train, repeats)
    if "fidelity" not in args.skip:
        rank_fidelity(cfg, args.preset, overrides, n_archs, args.workers, args.verbose, args.arch_seed)
    if "memory" not in args.skip:
        peak_memory(args.preset, overrides)


if __name__ == "__main__":
    main()
