"""Which samples go to training, validation and test: index arithmetic only, no torch.

Kept apart from the tensors so a config can learn how many training samples a user's data
yields (``DatasetInfo.train_size``) without building them.
"""

from __future__ import annotations

import numpy as np

TEST_SEED = 12345
"""Seed of the test share held out of data without a test split. Fixed, not ``split_seed``: the
test set scores the final pick, and must not move when the validation split is redrawn."""


def holdout_test(n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(test, rest) indices: ``fraction`` of ``n`` samples (at least one) for testing."""
    order = np.random.default_rng(TEST_SEED).permutation(n)
    k = max(1, int(round(n * fraction)))
    return order[:k], order[k:]


def holdout_val(n: int, val_fraction: float | None, train_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: ``val_fraction`` of ``n`` (at least one) held out for validation,
    then a prefix of ``train_fraction`` of the rest (so a smaller fraction is a subset of a
    larger one). ``val_fraction`` None: the data has its own validation split; val is empty."""
    order = np.random.default_rng(split_seed).permutation(n)
    n_val = 0 if val_fraction is None else max(1, int(round(n * val_fraction)))
    val, train = order[:n_val], order[n_val:]
    return train[: max(1, int(round(len(train) * train_fraction)))], val


def train_size(n: int, *, has_val: bool, has_test: bool, val_fraction: float, test_fraction: float,
               train_fraction: float) -> int:
    """Training samples the two holdouts above leave out of ``n`` (0 when nothing is left)."""
    if not has_test:
        n -= max(1, int(round(n * test_fraction)))
    if not has_val:
        n -= max(1, int(round(n * val_fraction)))
    return 0 if n <= 0 else max(1, int(round(n * train_fraction)))
