"""scikit-learn's bundled 8x8 digits (1,797 images, 10 classes): an image set that needs no file,
but scikit-learn (the ``sklearn`` extra)."""

from __future__ import annotations

import numpy as np

from nas_gym.data.dataset import Dataset, split
from nas_gym.data.registry import DATASETS
from nas_gym.data.settings import DataConfig
from nas_gym.data.splits import holdout_test
from nas_gym.extras import require


def load(cfg: DataConfig) -> Dataset:
    """A fixed 20% test split (independent of ``split_seed``), pixels scaled to [-1, 1]."""
    d = require("sklearn.datasets", "data.name 'digits'", "use another dataset").load_digits()
    x = (d.images.astype(np.float32) / 16.0 - 0.5) / 0.5
    y = d.target.astype(np.int64)
    test, train = holdout_test(len(y), 0.2)
    return split("digits", x[train][:, None], y[train], x[test][:, None], y[test], cfg, DATASETS["digits"].classes)
