import itertools
import sys

import pytest
import torch

import nas_gym.training.train as train_module
from nas_gym.config import RuntimeConfig, TrainConfig, load_config
from nas_gym.data import Dataset, load_dataset
from nas_gym.evaluators.base import EvalResult
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.spaces.layer_chain.model import build_model
from nas_gym.training.train import augment_images, evaluate_architecture, lr_factor, resolve_device, train

CPU = RuntimeConfig(device="cpu")
CNN = Chain.parse("conv5-32|conv3-32s2|conv3-32")
POOLS = Chain.parse("avgpool|maxpool")


@pytest.fixture(scope="module")
def tiny():
    cfg = load_config("mnist1d-tiny")
    return load_dataset(cfg.data), cfg.train


def make_images(n: int = 64, side: int = 8) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, side, side, generator=g), torch.randint(0, 3, (n,), generator=g)
    return Dataset("fake", x, y, x[:16], y[:16], x[:8], y[:8], 3)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_lr_factor_warms_up_then_decays(schedule):
    factors = [lr_factor(s, 100, 10, schedule) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in itertools.pairwise(factors[:10]))
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))
    assert 0.0 < factors[-1] <= 1.0
    if schedule == "constant":
        assert factors[-1] == 1.0
    else:
        assert factors[-1] < 0.05


def test_cnn_beats_pooling_only(tiny):
    data, cfg = tiny
    cnn = evaluate_architecture(CNN, data, cfg, CPU)
    pools = evaluate_architecture(POOLS, data, cfg, CPU)
    assert cnn.ok and pools.ok
    assert pools.val_acc < 0.35  # a linear model on 10 pooled values: a bit above chance
    assert cnn.val_acc > pools.val_acc + 0.25
    assert cnn.fidelity == cfg.epochs and cnn.train_seconds > 0
    assert cnn.params > pools.params and cnn.flops > pools.flops


def test_same_seed_same_result(tiny):
    data, cfg = tiny
    a = evaluate_architecture(CNN, data, cfg, CPU)
    b = evaluate_architecture(CNN, data, cfg, CPU)
    assert (a.val_acc, a.train_loss) == (b.val_acc, b.train_loss)
    c = evaluate_architecture(CNN, data, cfg.model_copy(update={"seed": 1}), CPU)
    assert c.train_loss != a.train_loss


def test_huge_learning_rate_fails_as_nan_loss(tiny):
    data, cfg = tiny
    # model_construct skips validation: the config caps lr at 10 to catch typos, not to prevent this
    wild = TrainConfig.model_construct(**{**cfg.model_dump(), "optimizer": "sgd", "lr": 1e6})
    result = evaluate_architecture(CNN, data, wild, CPU)
    assert (result.status, result.reason, result.val_acc) == ("failed", "nan_loss", 0.0)


def test_too_many_params_refused_without_training(tiny, monkeypatch):
    data, cfg = tiny

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained a network over the parameter limit")

    monkeypatch.setattr(train_module, "train_seeds", must_not_train)
    result = evaluate_architecture(CNN, data, cfg.model_copy(update={"max_params": 100}), CPU)
    assert not result.ok and result.train_seconds == 0.0
    assert result.reason == f"too_many_params: {result.params} > 100"
    assert result.params > 100 and result.flops > 0


def test_builder_error_becomes_failure(tiny):
    data, cfg = tiny
    too_deep = Chain.parse("|".join(["maxpool", "avgpool"] * 4))  # length 40 halves below 1
    result = evaluate_architecture(too_deep, data, cfg, CPU)
    assert result.status == "failed" and result.reason.startswith("exception: ValueError: ")


@pytest.mark.parametrize("error, reason", [
    (RuntimeError("boom"), "exception: RuntimeError: boom"),
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), "out_of_memory"),
    (RuntimeError("DefaultCPUAllocator: out of memory"), "out_of_memory"),
], ids=["exception", "cuda-oom", "runtime-oom"])
def test_training_errors_become_failures(tiny, monkeypatch, error, reason):
    data, cfg = tiny

    def explode(*args, **kwargs):
        raise error

    monkeypatch.setattr(train_module, "_fit", explode)
    threads = torch.get_num_threads()
    result = evaluate_architecture(CNN, data, cfg, CPU)
    assert isinstance(result, EvalResult) and (result.status, result.reason) == ("failed", reason)
    assert torch.get_num_threads() == threads


def test_global_state_is_restored(tiny):
    data, cfg = tiny
    torch.manual_seed(1234)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    model = build_model(CNN, data.input_shape, data.num_classes)
    rng_after_build = torch.get_rng_state()
    train(model, data, cfg, CPU)
    assert torch.equal(torch.get_rng_state(), rng_after_build)
    torch.set_rng_state(rng)
    evaluate_architecture(Chain.parse("conv3-16|dropout0.2|maxpool"), data, cfg, CPU)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_num_threads() == threads


def test_test_accuracy_only_when_asked(tiny):
    data, cfg = tiny
    model = build_model(CNN, data.input_shape, data.num_classes)
    metrics = train(model, data, cfg, CPU)
    assert metrics.ok and metrics.test_acc is None and 0.0 < metrics.val_acc <= 1.0
    assert metrics.train_loss > 0 and metrics.seconds > 0
    result = evaluate_architecture(CNN, data, cfg, CPU, want_test=True)
    assert result.test_acc is not None and 0.0 < result.test_acc <= 1.0


def test_augment_crops_and_flips_each_image():
    x = torch.arange(2 * 2 * 5 * 6, dtype=torch.float32).reshape(2, 2, 5, 6)
    pad = 1
    out = augment_images(x.repeat(8, 1, 1, 1), torch.Generator().manual_seed(0), pad)
    assert out.shape == (16, 2, 5, 6)
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect")
    seen = set()
    for i, img in enumerate(out):
        source = padded[i % 2]
        matches = [(dy, dx, flip) for dy in range(3) for dx in range(3) for flip in (False, True)
                   if torch.equal(img, (lambda c: c.flip(-1) if flip else c)(source[:, dy:dy + 5, dx:dx + 6]))]
        assert matches, f"image {i} is not a crop (or flipped crop) of its padded source"
        seen.update(m[2] for m in matches)
    assert seen == {False, True}


def test_images_train_with_augmentation():
    data = make_images()
    cfg = TrainConfig(epochs=2, batch_size=16, augment=True)
    model = build_model(Chain.parse("conv3-8|maxpool|res3-8"), data.input_shape, data.num_classes)
    metrics = train(model, data, cfg, CPU, want_test=True)
    assert metrics.ok and metrics.test_acc is not None


@pytest.mark.parametrize("threads, expected", [(None, 1), (2, 2)], ids=["default-one", "explicit"])
def test_cpu_thread_count_is_set_for_the_run_and_restored(tiny, monkeypatch, threads, expected):
    data, cfg = tiny
    seen = []

    def record(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return [train_module.TrainMetrics(0.5, None, 1.0, 0.0)]

    monkeypatch.setattr(train_module, "_fit", record)
    before = torch.get_num_threads()
    train(build_model(CNN, data.input_shape, data.num_classes), data, cfg, RuntimeConfig(device="cpu", threads=threads))
    assert seen == [expected] and torch.get_num_threads() == before


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_stepper_equals_torch_optim(optimizer):
    """The functional step is the optimiser class's own kernel: same weights after a few steps,
    parameters without a gradient skipped as the class skips them."""
    from nas_gym.training.stepper import Stepper, fused_supported

    cfg = TrainConfig(optimizer=optimizer, lr=0.05, weight_decay=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    init = [torch.randn(4, 3, generator=g), torch.randn(3, generator=g), torch.randn(2, generator=g)]
    ours = [torch.nn.Parameter(t.clone()) for t in init]
    theirs = [torch.nn.Parameter(t.clone()) for t in init]
    fused = {"fused": True} if fused_supported(torch.device("cpu")) else {"foreach": True}
    if optimizer == "sgd":
        reference = torch.optim.SGD(theirs, lr=cfg.lr, momentum=0.9, weight_decay=0.01, nesterov=True, **fused)
    else:
        cls = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
        reference = cls(theirs, lr=cfg.lr, weight_decay=0.01, **fused)
    stepper = Stepper(ours, cfg, torch.device("cpu"))
    for step, lr in enumerate((0.05, 0.02, 0.01)):
        grads = [torch.randn(t.shape, generator=g) for t in init]
        for params in (ours, theirs):
            for i, (p, grad) in enumerate(zip(params, grads, strict=True)):
                p.grad = None if (i == 2 and step == 1) else grad.clone()
        for group in reference.param_groups:
            group["lr"] = lr
        reference.step()
        stepper.step(lr)
        for a, b in zip(ours, theirs, strict=True):
            assert torch.equal(a, b)
    stepper.zero_grad()
    assert all(p.grad is None for p in ours)


@pytest.mark.slow
def test_first_training_imports_nothing_heavy():
    """torch.optim's classes import torch._dynamo (1.4-2 s) when first built, and a meta-device
    tensor copy imports sympy: the trainer does neither, so a fresh worker's first evaluation
    costs what a warm one does."""
    import subprocess

    code = ("import sys, torch\n"
            "from nas_gym.config import load_config, RuntimeConfig\n"
            "from nas_gym.data import load_dataset\n"
            "from nas_gym.spaces.layer_chain.chain import Chain\n"
            "from nas_gym.training.train import evaluate_architecture, evaluate_seeds\n"
            "cfg = load_config('mnist1d-tiny', {'train.epochs': 1, 'data.train_fraction': 0.1})\n"
            "data = load_dataset(cfg.data)\n"
            "arch = Chain.parse('conv3-16|dropout0.2|maxpool|res3-16')\n"
            "assert evaluate_architecture(arch, data, cfg.train, RuntimeConfig(device='cpu')).ok\n"
            "assert all(r.ok for r in evaluate_seeds(arch, data, cfg.train, RuntimeConfig(device='cpu'), [0, 1]))\n"
            "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=True)
    assert out.stdout.strip() == "[]"
