"""Benchmark the trainer's per-step overhead on small networks, and a fresh process's warm-up.

Four measurements, one run, one torch thread:

1. Small networks (under 0.3 M multiply-accumulates, a fixed seeded sample of a preset's space):
   seconds per evaluation of the trainer before issue 16 (``bench_trainer.previous_trainer``)
   and of the current one, and of the current one with each change taken back: 1-D layers as
   built instead of channels-last 2-D (``nas_gym.training.model_rewrite``), and ``torch.optim.AdamW``'s
   class (fused, then ``foreach``) instead of the functional fused step (``nas_gym.training.stepper``).
   Interleaved repeats; the ratios are medians over the sample of per-network medians of paired
   per-repeat ratios, by CPU seconds (robust to another process taking the core).
2. Evaluation: accuracy on the validation and test splits under ``torch.no_grad`` (what the
   trainer does) against ``torch.inference_mode``.
3. ``torch.compile`` on one network of the sample, in a fresh process: the first evaluation
   (compilation included) and a second one, against eager.
4. Warm-up: in fresh processes, the first evaluation against the next ones (same network), for
   the current trainer and the previous one.

Usage: ``python scripts/bench_overhead.py [--preset mnist1d] [--archs 8] [--repeats 5] [--skip compile]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import previous_trainer  # noqa: E402  (a sibling script: the pre-issue-16 baseline)

import nas_gym.training.fit as fit_module  # noqa: E402
import nas_gym.training.train as train_module  # noqa: E402
from nas_gym.config import RuntimeConfig, load_config  # noqa: E402
from nas_gym.data import load_dataset  # noqa: E402
from nas_gym.training.model_rewrite import rewrite, unchanged  # noqa: E402

RUNTIME = RuntimeConfig(device="cpu", threads=1)
SCRIPTS = Path(__file__).resolve().parent


class _ClassStepper:
    """``torch.optim.AdamW`` behind the ``Stepper`` interface: what the functional step replaced."""

    def __init__(self, params, config, device, foreach: bool) -> None:
        flags = {"foreach": True} if foreach else {"fused": True}
        self.opt = torch.optim.AdamW(list(params), lr=config.lr, weight_decay=config.weight_decay, **flags)

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def step(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()


@contextlib.contextmanager
def _variant(lift: bool = True, stepper: str = "functional") -> Iterator[None]:
    """Take one change back for the duration of a run (benchmark only)."""
    saved = train_module._member_net, fit_module.Stepper
    if not lift:
        train_module._member_net = lambda models, data, device: unchanged(models[0])
    if stepper != "functional":
        fit_module.Stepper = lambda p, c, d: _ClassStepper(p, c, d, foreach=stepper == "class foreach")
    try:
        yield
    finally:
        train_module._member_net, fit_module.Stepper = saved


def small_sample(space, shape, classes, n: int, limit: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    picked: list = []
    for _ in range(100 * n):
        arch = space.sample(rng)
        if space.count_flops(arch, shape, classes) < limit and arch not in picked:
            picked.append(arch)
        if len(picked) == n:
            break
    return picked


def overhead_table(space, data, train, archs: list, repeats: int) -> None:
    def ours(arch, **variant) -> Callable[[], object]:
        def run() -> object:
            with _variant(**variant):
                return train_module.evaluate_architecture(arch, data, train, RUNTIME, space=space)
        return run

    ways = {"previous": lambda a: (lambda: previous_trainer(a, data, train, space)),
            "ours": lambda a: ours(a),
            "no lift": lambda a: ours(a, lift=False),
            "class fused": lambda a: ours(a, stepper="class fused"),
            "class foreach": lambda a: ours(a, stepper="class foreach")}
    names = list(ways)
    print(f"\n## Small networks (< 0.3 M MAC): CPU s per evaluation, median of {repeats}; "
          "ratios = that column's time / ours (paired per repeat)")
    print(f"{'architecture':60s} {'MMAC':>5s} " + " ".join(f"{n:>13s}" for n in names))
    ratios: dict[str, list[float]] = {n: [] for n in names}
    for arch in archs:
        runs: dict[str, list[float]] = {n: [] for n in names}
        for r in range(repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                fn = ways[name](arch)
                cpu = time.process_time()
                fn()
                runs[name].append(time.process_time() - cpu)
        cells = []
        for name in names:
            ratio = statistics.median(a / b for a, b in zip(runs[name], runs["ours"], strict=True))
            ratios[name].append(ratio)
            cells.append(f"{statistics.median(runs[name]):5.2f} ({ratio:4.2f}x)")
        mac = space.count_flops(arch, data.input_shape, data.num_classes) / 1e6
        print(f"{arch.text():60s} {mac:5.2f} " + " ".join(f"{c:>13s}" for c in cells))
    print("median over the sample, time / ours: " + ", ".join(f"{n} {statistics.median(ratios[n]):.2f}x"
                                                              for n in names if n != "ours"))


def evaluation_modes(space, data, arch, repeats: int) -> None:
    torch.manual_seed(0)
    model = space.build_model(arch, data.input_shape, data.num_classes)
    rw = rewrite([model], data.input_shape, lift=True)
    run = fit_module.Runner(torch.device("cpu"), RUNTIME, image=False)
    modes = {"no_grad": contextlib.nullcontext, "inference_mode": torch.inference_mode}
    times: dict[str, list[float]] = {m: [] for m in modes}
    torch.set_num_threads(1)
    for _ in range(repeats):
        for mode, ctx in modes.items():
            cpu = time.process_time()
            for _ in range(10):
                with ctx():
                    run.accuracies(rw, data.x_val, data.y_val, 1024)
                    run.accuracies(rw, data.x_test, data.y_test, 1024)
            times[mode].append((time.process_time() - cpu) / 10)
    print(f"\n## Evaluation of {arch.text()} on validation + test ({len(data.y_val) + len(data.y_test)} samples, "
          "one batch each): " + ", ".join(f"{m} {1000 * statistics.median(t):.1f} ms" for m, t in times.items()))


_CHILD = """
import json, sys, time
sys.path.insert(0, {scripts!r})
import torch
from nas_gym.config import RuntimeConfig, load_config
from nas_gym.data import load_dataset
cfg = load_config({preset!r}); data = load_dataset(cfg.data); space = cfg.search_space()
arch = space.parse({arch!r}); runtime = RuntimeConfig(device="cpu", threads=1)
mode = {mode!r}
if mode == "previous":
    from bench_trainer import previous_trainer
    run = lambda: previous_trainer(arch, data, cfg.train, space)
else:
    import nas_gym.training.train as tm
    if mode == "compile":
        plain = tm._member_net
        def compiled(models, data, device):
            rw = plain(models, data, device)
            rw.net = torch.compile(rw.net)
            return rw
        tm._member_net = compiled
    run = lambda: tm.evaluate_architecture(arch, data, cfg.train, runtime, space=space)
times = []
for _ in range({evaluations}):
    start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def _fresh(preset: str, arch: str, mode: str, evaluations: int) -> list[float]:
    code = _CHILD.format(scripts=str(SCRIPTS), preset=preset, arch=arch, mode=mode, evaluations=evaluations)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm_up(preset: str, arch: str, processes: int) -> None:
    print(f"\n## Warm-up: {arch}, {processes} fresh processes each (wall s; data cached on disk, imports before timing)")
    for mode in ("ours", "previous"):
        runs = [_fresh(preset, arch, mode, 4) for _ in range(processes)]
        first = statistics.median(r[0] for r in runs)
        warm = statistics.median(statistics.median(r[1:]) for r in runs)
        print(f"{mode:9s} first evaluation {first:5.2f} s, warm {warm:5.2f} s: first - warm = {first - warm:+.2f} s")


def compile_check(preset: str, arch: str) -> None:
    eager, compiled = _fresh(preset, arch, "ours", 3), _fresh(preset, arch, "compile", 3)
    print(f"\n## torch.compile (inductor, CPU) on {arch}, fresh processes, wall s per evaluation: "
          f"eager {', '.join(f'{t:.2f}' for t in eager)}; compiled {', '.join(f'{t:.2f}' for t in compiled)} "
          "(the first includes compilation)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist1d")
    parser.add_argument("--archs", type=int, default=8, help="networks in the small-network sample")
    parser.add_argument("--limit", type=float, default=0.3e6, help="multiply-accumulates below which a network is small")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes for the warm-up")
    parser.add_argument("--skip", action="append", default=[], choices=["overhead", "eval", "compile", "warmup"])
    args = parser.parse_args()
    cfg = load_config(args.preset)
    data = load_dataset(cfg.data)
    space = cfg.search_space()
    archs = small_sample(space, data.input_shape, data.num_classes, args.archs, args.limit)
    print(f"preset {cfg.name}: {cfg.train.epochs} epochs, batch {cfg.train.batch_size}; 1 torch thread; "
          f"torch {torch.__version__}; sample: first {len(archs)} distinct networks under {args.limit / 1e6:g} M MAC "
          "drawn with seed 0")
    if "warmup" not in args.skip:
        warm_up(args.preset, archs[0].text(), args.processes)
    train_module.evaluate_architecture(archs[0], data, cfg.train, RUNTIME, space=space)  # one-off costs first
    previous_trainer(archs[0], data, cfg.train, space)
    if "overhead" not in args.skip:
        overhead_table(space, data, cfg.train, archs, args.repeats)
    if "eval" not in args.skip:
        evaluation_modes(space, data, archs[0], args.repeats)
    if "compile" not in args.skip:
        compile_check(args.preset, archs[0].text())


if __name__ == "__main__":
    main()
