"""Search-space rules, the Chain value, sampling, enumeration and mutation."""

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from nas_gym.spaces.base import ArchitectureError
from nas_gym.spaces.layer_chain.chain import Chain, Op
from nas_gym.spaces.layer_chain.space import LayerChainSpace


@pytest.fixture
def space() -> LayerChainSpace:
    return LayerChainSpace.from_texts(["conv3-16", "conv3-32s2", "maxpool", "avgpool", "dropout0.2"], max_depth=4, input_size=8)


@pytest.mark.parametrize("text", ["conv3-32", "conv5-64s2", "res3-32", "maxpool", "avgpool", "dropout0.2",
                                  "conv3-32|conv3-32s2|maxpool|conv5-64"])
def test_parse_round_trip(text):
    assert Chain.parse(text).text() == text
    assert Chain.parse(text) == Chain.parse(f" {text} ")


@pytest.mark.parametrize("bad", ["", "conv4-32", "conv3-0", "conv3-32s3", "res3-32s2", "pool", "dropout1.5",
                                 "conv3-32||maxpool", "conv3-32|stop"], ids=repr)
def test_parse_rejects_bad_text_with_one_line(bad):
    with pytest.raises(ArchitectureError) as e:
        Chain.parse(bad)
    assert "\n" not in str(e.value)


def test_architecture_is_hashable_and_immutable():
    a, b = Chain.parse("conv3-16|maxpool"), Chain.parse("conv3-16|maxpool")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.ops = ()  # type: ignore[misc]


def test_key_is_stable_across_processes():
    arch = Chain.parse("conv3-32|conv3-32s2|maxpool|conv5-64")
    code = "from nas_gym.spaces.layer_chain.chain import Chain; print(Chain.parse('conv3-32|conv3-32s2|maxpool|conv5-64').key())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == arch.key()


def test_key_pinned():
    """The key must never change between versions: caches and tables depend on it."""
    assert Chain.parse("conv3-16|maxpool").key() == Chain.parse("conv3-16|maxpool").key()
    import hashlib

    assert Chain.parse("conv3-16|maxpool").key() == hashlib.sha256(b"conv3-16|maxpool").hexdigest()[:20]


def test_mask_rules(space):
    stop = space.stop_action
    m = space.mask(())
    assert not m[stop], "min_depth 1: stop is not allowed on the empty chain"
    assert m[:stop].all() is np.True_ or m[:stop].all()
    after_pool = space.mask(Chain.parse("maxpool"))
    assert not after_pool[space.action_of(Op.parse("maxpool"))] and not after_pool[space.action_of(Op.parse("avgpool"))]
    assert after_pool[stop]
    after_drop = space.mask(Chain.parse("dropout0.2"))
    assert not after_drop[space.action_of(Op.parse("dropout0.2"))]
    # 8 -> 4 -> 2 -> 1: no downsampling at size 1
    small = Chain.parse("conv3-32s2|maxpool|conv3-32s2")
    assert space.spatial_size(small) == 1
    m = space.mask(small)
    assert not m[space.action_of(Op.parse("maxpool"))] and not m[space.action_of(Op.parse("conv3-32s2"))]
    assert m[space.action_of(Op.parse("conv3-16"))]
    full = Chain.parse("conv3-16|conv3-16|conv3-16|conv3-16")
    assert space.mask(full).tolist() == [False] * stop + [True]


@pytest.mark.parametrize("text,ok", [
    ("conv3-16", True), ("maxpool|maxpool", False), ("maxpool|avgpool", False), ("dropout0.2|dropout0.2", False),
    ("conv3-16|conv3-16|conv3-16|conv3-16|conv3-16", False), ("conv5-16", False),
    ("conv3-32s2|maxpool|conv3-32s2|maxpool", False), ("conv3-32s2|maxpool|conv3-32s2|conv3-16", True),
])
def test_is_valid(space, text, ok):
    assert space.is_valid(Chain.parse(text)) is ok
    if not ok:
        with pytest.raises(ArchitectureError, match="not in the search space"):
            space.validate(text)


def test_size_matches_enumeration(space):
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == space.size()
    assert all(space.is_valid(a) for a in archs)


def test_sample_is_uniform_and_seeded(space):
    n = space.size()
    rng = np.random.default_rng(0)
    counts = Counter(space.sample(rng) for _ in range(100 * n))
    assert len(counts) == n
    expected = 100
    # chi-square against uniform: with n-1 dof the statistic should be close to n
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 2 * n
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b


def test_mutate_gives_valid_neighbour(space):
    rng = np.random.default_rng(1)
    arch = Chain.parse("conv3-16|maxpool")
    for _ in range(50):
        child = space.mutate(arch, rng)
        assert child != arch and space.is_valid(child)
        assert abs(len(child) - len(arch)) <= 1
        arch = child


def test_space_rejects_bad_vocabulary():
    with pytest.raises(ArchitectureError):
        LayerChainSpace.from_texts(["conv3-16", "conv3-16"], max_depth=3, input_size=8)
    with pytest.raises(ArchitectureError):
        LayerChainSpace.from_texts(["conv3-16"], max_depth=2, input_size=8, min_depth=3)
