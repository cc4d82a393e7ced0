"""Benchmark the trainer on NVIDIA GPUs: architectures per second, GPU utilisation, and samples
per second against what the device can do, with one and with several architectures per GPU.

For each preset (default ``cifar10`` and ``mnist1d``) and each packing (``--per-gpu 1,2,4``:
architectures training at once on every GPU, one worker process each, ``evaluator.gpus_per_eval
= 1 / k``), the same architectures, sampled with a fixed seed from the preset's space, are trained
at the preset's budget by the process pool, after one warm-up batch that starts the workers.
Reported per row:

* architectures per second, and training samples per second (epochs x training split per
  architecture);
* achieved TFLOP/s, counted as 2 FLOPs per multiply-accumulate and 3 forward passes per training
  sample (forward, and the backward's two gradients), against a large matmul in the trainer's
  precision measured on the same GPU (its "peak");
* mean GPU utilisation over the timed part, sampled every 0.5 s through
  ``torch.cuda.utilization`` (needs ``pynvml``; "n/a" without it).

Several architectures per GPU pay off when one small network leaves the GPU idle between
kernels; NVIDIA MPS (docs/gpu.md) lets their kernels run side by side instead of time-sliced.

Usage (a GPU owner): ``python scripts/bench_gpu.py [--presets cifar10,mnist1d] [--archs 8]
[--per-gpu 1,2,4] [--set train.epochs=2 ...]``. Without a GPU it prints one line and exits with 2.

``python scripts/bench_gpu.py --activations cifar10`` runs anywhere: the bytes DARTS's mixed
forward keeps per sample for backward on a preset (``nas_gym.oneshot.memory``), measured on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import numpy as np
import torch

from nas_gym.config import Config, load_config, parse_overrides
from nas_gym.evaluators.training import TrainingEvaluator
from nas_gym.storage.cache import MemoryCache
from nas_gym.training.numerics import precision


def activations(preset: str) -> None:
    """DARTS's mixed forward: bytes saved for backward per sample, and at the preset's batch."""
    import torch.nn.functional as F

    from nas_gym.oneshot.memory import bytes_per_sample

    torch.set_num_threads(1)
    cfg = load_config(preset, {"runtime.device": "cpu"})
    net = cfg.search_space().build_supernet(cfg.input_shape, cfg.num_classes)
    weights = torch.full(net.decision_shape, 1.0 / net.decision_shape[1], requires_grad=True)

    def loss(n: int) -> torch.Tensor:
        x = torch.randn((n, *cfg.input_shape), generator=torch.Generator().manual_seed(0))
        return F.cross_entropy(net.forward_mixed(x, F.softmax(weights, -1)), torch.zeros(n, dtype=torch.long))

    per = bytes_per_sample(loss)
    print(f"{preset}: DARTS mixed forward keeps {per / 2**20:.1f} MiB per sample for backward; "
          f"{per * cfg.train.batch_size / 2**30:.1f} GiB at train.batch_size {cfg.train.batch_size}")


def peak_tflops(device: torch.device, dtype: torch.dtype, n: int = 8192, repeats: int = 10) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


class Utilisation:
    """Mean ``torch.cuda.utilization`` of every GPU, sampled in a thread while timing."""

    def __init__(self, gpus: int) -> None:
        self.gpus, self.samples, self._stop = gpus, [], threading.Event()
        try:
            torch.cuda.utilization(0)
            self.available = True
        except Exception:  # noqa: BLE001 - pynvml missing or no NVML: report n/a
            self.available = False
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append(np.mean([torch.cuda.utilization(i) for i in range(self.gpus)]))

    def __enter__(self) -> Utilisation:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    def mean(self) -> str:
        return f"{np.mean(self.samples):.0f}%" if self.samples else "n/a"


def bench(cfg: Config, n_archs: int, per_gpu: int, gpus: int, peak: float) -> str:
    workers = per_gpu * gpus
    run = load_config(cfg, {"evaluator.backend": "process", "evaluator.workers": workers,
                            "evaluator.gpus_per_eval": 1.0 / per_gpu, "evaluator.cache": None})
    space = run.search_space()
    rng = np.random.default_rng(0)
    warm = [space.sample(rng) for _ in range(workers)]
    archs = [space.sample(rng) for _ in range(n_archs)]
    with TrainingEvaluator(run, cache=MemoryCache()) as ev:
        ev.evaluate_many(warm)  # starts the workers and loads their data
        train_size = len(ev.data.y_train)
        with Utilisation(gpus) as util:
            start = time.perf_counter()
            results = ev.evaluate_many(archs)
            seconds = time.perf_counter() - start
    ok = [r for r in results if r.ok]
    samples = run.train.epochs * train_size * len(ok)
    tflops = sum(6 * r.flops for r in ok) * run.train.epochs * train_size / seconds / 1e12
    return (f"| {cfg.name} | {per_gpu} | {workers} | {len(ok)}/{len(archs)} | {len(archs) / seconds:.3f} | "
            f"{samples / seconds:,.0f} | {tflops:.2f} ({100 * tflops / peak:.1f}% of {peak:.0f}) | {util.mean()} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--presets", default="cifar10,mnist1d")
    parser.add_argument("--archs", type=int, default=8, help="architectures timed per row")
    parser.add_argument("--per-gpu", default="1,2,4", help="architectures training at once on each GPU")
    parser.add_argument("--activations", metavar="PRESET", help="only measure DARTS's activations per sample (CPU)")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    args = parser.parse_args()
    if args.activations:
        activations(args.activations)
        return
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); run it on a GPU host",
              file=sys.stderr)
        sys.exit(2)
    gpus = torch.cuda.device_count()
    device = torch.device("cuda", 0)
    overrides = {**parse_overrides(args.set), "runtime.device": "cuda"}
    configs = [load_config(p, overrides) for p in args.presets.split(",")]
    mode = precision(device, configs[0].runtime)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[mode]
    peak = peak_tflops(device, dtype)
    print(f"{gpus} x {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}, cuDNN "
          f"{torch.backends.cudnn.version()}, torch {torch.__version__}, precision {mode}; "
          f"peak = an 8192^2 {mode} matmul, TFLOP/s")
    print("| preset | per GPU | workers | trained | archs/s | train samples/s | TFLOP/s (of peak) | GPU util |")
    print("|---|---|---|---|---|---|---|---|")
    for cfg in configs:
        for per_gpu in (int(k) for k in args.per_gpu.split(",")):
            print(bench(cfg, args.archs, per_gpu, gpus, peak), flush=True)


if __name__ == "__main__":
    main()
