"""MNIST-1D generated with other arguments: a dataset of its own, leaving the paper's keys alone."""

from __future__ import annotations

import pytest

from nas_gym.config import ConfigError, load_config
from nas_gym.data import load_dataset


def test_paper_data_keeps_its_cache_key():
    """The generator fields at their default add nothing to the key of the paper's data."""
    assert load_config("mnist1d-cell").data.identity() == {"name": "mnist1d", "val_fraction": 0.2,
                                                            "train_fraction": 0.5, "split_seed": 0}


def test_generated_variant_has_its_own_size_and_key(tmp_path):
    base = {"data.root": str(tmp_path), "data.train_fraction": "1.0"}
    plain = load_config("mnist1d-cell", base)
    big = load_config("mnist1d-cell", {**base, "data.samples": "600", "data.generation_seed": "3"})
    noisy = load_config("mnist1d-cell", {**base, "data.samples": "600", "data.generation_seed": "3", "data.noise": "2"})
    assert len({plain.context_hash(), big.context_hash(), noisy.context_hash()}) == 3
    d_big, d_noisy = load_dataset(big.data), load_dataset(noisy.data)
    assert len(d_big.y_train) + len(d_big.y_val) == 480 and len(d_big.y_test) == 120  # the paper's 80/20
    assert d_big.x_train.shape[1:] == (1, 40)
    assert not (d_big.x_train == d_noisy.x_train).all()  # more noise, other signals
    again = load_dataset(big.data)  # read back from the cached file
    assert (again.x_train == d_big.x_train).all()


def test_generator_fields_belong_to_mnist1d_only():
    with pytest.raises(ConfigError, match="samples"):
        load_config("digits", {"data.samples": "600"})
