import numpy as np
import pytest
import torch
from torch import nn

from nas_gym.config import load_config
from nas_gym.spaces.layer_chain.chain import Chain, count_flops
from nas_gym.spaces.layer_chain.model import build_model
from nas_gym.training.train import count_params

SHAPES = [pytest.param((1, 40), id="1d"), pytest.param((3, 12, 10), id="2d")]


def arch(text: str) -> Chain:
    return Chain.parse(text)


@pytest.mark.parametrize("shape", SHAPES)
def test_output_shape(shape):
    model = build_model(arch("conv3-8|res3-16|maxpool|conv5-8s2|dropout0.2|avgpool"), shape, 7)
    assert model(torch.randn(5, *shape)).shape == (5, 7)
    assert isinstance(model[0][0], nn.Conv1d if len(shape) == 2 else nn.Conv2d)


@pytest.mark.parametrize("op", ["conv3-8", "conv5-8s2", "res3-8", "res5-1", "maxpool", "avgpool", "dropout0.5"])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_op_builds_and_backprops(op, shape):
    model = build_model(arch(op), shape, 4)
    out = model(torch.randn(3, *shape))
    out.sum().backward()
    assert out.shape == (3, 4)
    assert all(p.grad is not None for p in model.parameters())


def test_residual_skip_is_identity_only_when_channels_match():
    same = build_model(arch("conv3-8|res3-8"), (1, 16), 2)[1]
    wider = build_model(arch("conv3-8|res3-16"), (1, 16), 2)[1]
    assert isinstance(same.skip, nn.Identity)
    assert isinstance(wider.skip[0], nn.Conv1d) and wider.skip[0].kernel_size == (1,)


@pytest.mark.parametrize(
    "shape, expected",
    [
        # conv3-4: 1*4*3 + BN 2*4 = 20; res3-8 from 4 channels: 4*8*3 + 16 + 8*8*3 + 16 + 1x1 projection 4*8 + 16
        # = 368; maxpool: 0; head: 8*10 + 10 = 90
        pytest.param((1, 16), 20 + 368 + 90, id="1d"),
        # the same with 3x3 kernels: 1*4*9 + 8 = 44; 4*8*9 + 16 + 8*8*9 + 16 + 32 + 16 = 944; 90
        pytest.param((1, 8, 8), 44 + 944 + 90, id="2d"),
    ],
)
def test_param_count_by_hand(shape, expected):
    assert count_params(build_model(arch("conv3-4|res3-8|maxpool"), shape, 10)) == expected


def test_flops_by_hand():
    # input (1, 16): conv3-4s2 -> length 8: 1*4*3*8 = 96
    # res3-8 at length 8: (4*8*3 + 8*8*3)*8 = 2304, plus 1x1 projection 4*8*8 = 256
    # maxpool -> length 4; conv5-6: 8*6*5*4 = 960; head: 6*10 = 60
    assert count_flops(arch("conv3-4s2|res3-8|maxpool|conv5-6"), (1, 16), 10) == 96 + 2304 + 256 + 960 + 60
    # 2-D, 7x7 input: conv3-4s2 -> 4x4: 1*4*9*16 = 576; maxpool -> 2x2; conv3-2: 4*2*9*4 = 288; head 2*10
    assert count_flops(arch("conv3-4s2|maxpool|conv3-2"), (1, 7, 7), 10) == 576 + 288 + 20


def measured_macs(model: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    """MACs of convs and linears seen by forward hooks, and the spatial size the head sees."""
    macs, head_size = [], []

    def conv_hook(m, inputs, out):
        macs.append(out[0].numel() * m.in_channels // m.groups * int(np.prod(m.kernel_size)))

    def linear_hook(m, inputs, out):
        macs.append(m.in_features * m.out_features)

    def pool_hook(m, inputs, out):
        head_size.append(inputs[0].shape[2])

    for m in model.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)
        elif isinstance(m, nn.AdaptiveAvgPool1d | nn.AdaptiveAvgPool2d):
            m.register_forward_hook(pool_hook)
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, *shape))
    return sum(macs), head_size[0]


@pytest.mark.parametrize("preset", ["mnist1d", "digits"])
def test_flops_and_sizes_agree_with_the_real_network(preset):
    """The analytic count must follow the same spatial sizes as the search space and the model."""
    cfg = load_config(preset)
    space = cfg.search_space()
    rng = np.random.default_rng(1)
    for _ in range(15):
        a = space.sample(rng)
        macs, size = measured_macs(build_model(a, cfg.input_shape, cfg.num_classes), cfg.input_shape)
        assert count_flops(a, cfg.input_shape, cfg.num_classes) == macs, a.text()
        assert size == space.spatial_size(a), a.text()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"\(C, L\) or \(C, H, W\)"):
        build_model(arch("conv3-8"), (40,), 10)
    with pytest.raises(ValueError, match="below 1"):
        build_model(arch("maxpool|maxpool|maxpool"), (1, 4), 10)
