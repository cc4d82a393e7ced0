"""The fitted surrogate as shipped: plain arrays, predicted without scikit-learn.

A fitted ensemble of gradient-boosted trees is flattened into one forest (every member's trees,
their leaf values scaled by 1 / members, so the forest's sum is the ensemble's mean) plus a
second forest for the log of the training seconds. Why not a pickle of the scikit-learn models:
a pickle is tied to the library version that wrote it and loads slowly, and scikit-learn's
``predict`` costs about a millisecond per call for one sample; here one query walks all trees
at once with a few numpy operations per tree level, and the file is a compressed ``.npz`` that
any numpy reads.

The noise model turns the predicted mean into a plausible single-seed accuracy: the predicted
mean plus one seed's deviation from its architecture's mean, drawn from those measured on
architectures trained under several seeds whose mean accuracy is close (a few bins of mean
accuracy). The measured deviations are skewed (a bad seed costs far more than a good one gains)
and shrink towards the top; drawing them per bin keeps both, where a symmetric or pooled noise
produced single-seed accuracies above any real training's.

The header (JSON inside the file) records the preset, the config sections that decide results,
the trainer version, the data's hash, the feature layout's fingerprint and library versions;
``nas_gym.evaluators.surrogate`` refuses a model that does not fit the config it is asked for.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas_gym.config import ConfigError
from nas_gym.spaces.base import SearchSpace
from nas_gym.storage.atomic import atomic_write_bytes
from nas_gym.storage.npz import NpzError, load_arrays

MODEL_FORMAT, MODEL_FORMAT_VERSION = "nas-gym-surrogate", 2
MODEL_SUFFIX = ".surrogate.npz"
ARRAY_NAMES = ("feature", "threshold", "children", "value", "roots", "tree_output", "baseline",
           "noise_x", "noise_y", "residuals", "residual_starts")


def feature_fingerprint(space: SearchSpace, n: int = 16) -> str:
    """A digest of the features of ``n`` architectures sampled with a fixed seed: a model's
    trees index features by position, so a changed ``features`` must retire the model."""
    rng = np.random.default_rng(12345)
    feats = np.stack([space.features(space.sample(rng)) for _ in range(n)]).astype(np.float32)
    return hashlib.sha256(np.round(feats, 4).tobytes() + str(feats.shape).encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class SurrogateModel:
    """A flattened forest over ``space.features`` with two outputs (0: mean validation accuracy,
    1: log training seconds) and a noise model.

    :param feature: per node, the feature index it tests (leaves: 0).
    :param threshold: per node, go right if the feature is above it (leaves: +inf, never right).
    :param children: ``(nodes, 2)`` global indices of the left and right child (a leaf: itself).
    :param value: per node, the leaf's contribution (0 for inner nodes).
    :param roots: global index of each tree's root.
    :param tree_output: per tree, the output it adds to.
    :param baseline: per output, the constant every prediction starts from.
    :param noise_x: per noise bin, the mean accuracy of its architectures (ascending).
    :param noise_y: per noise bin, the seed-to-seed standard deviation (reports).
    :param residuals: measured deviations of one seed from its architecture's mean, bin after bin.
    :param residual_starts: where each bin's residuals start in ``residuals`` (one more entry
        than bins: the last is the end).
    :param header: provenance (see the module docstring).
    """

    feature: np.ndarray
    threshold: np.ndarray
    children: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    tree_output: np.ndarray
    baseline: np.ndarray
    noise_x: np.ndarray
    noise_y: np.ndarray
    residuals: np.ndarray
    residual_starts: np.ndarray
    header: dict[str, Any] = field(default_factory=dict)
    depth: int = 0

    def __post_init__(self) -> None:
        if np.any(np.diff(self.tree_output) < 0):
            raise ValueError("SurrogateModel: trees must be grouped by output (tree_output non-decreasing)")
        if not self.depth:  # the deepest leaf bounds the walk; computed once
            object.__setattr__(self, "depth", _max_depth(self.children, self.roots))
        object.__setattr__(self, "_starts", np.searchsorted(self.tree_output, np.arange(len(self.baseline))))
        object.__setattr__(self, "_flat_children", self.children.astype(np.intp).ravel())

    @property
    def n_features(self) -> int:
        return int(self.header.get("n_features", 0))

    def raw(self, features: np.ndarray) -> np.ndarray:
        """Per output, the forest's sums for a ``(B, F)`` batch: ``(2, B)``."""
        # Flat indices throughout (feature of sample b at b * F + f, children of n at 2n and
        # 2n + 1): one-dimensional gathers are the cheapest numpy operation per tree and sample.
        x = np.ascontiguousarray(features, dtype=np.float64)
        batch, n_features = x.shape
        flat_x, offsets = x.ravel(), np.arange(batch) * n_features
        node = np.repeat(self.roots[:, None], batch, axis=1)  # (trees, B): every walk at its root
        for _ in range(self.depth):
            right = flat_x[self.feature[node] + offsets] > self.threshold[node]
            node = self._flat_children[2 * node + right]
        leaf = self.value[node]  # (trees, B)
        return np.add.reduceat(leaf, self._starts, axis=0) + self.baseline[:, None]

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean validation accuracy (clipped to [0, 1]) and training seconds, per row of ``features``."""
        raw = self.raw(features)
        return np.clip(raw[0], 0.0, 1.0), np.exp(raw[1])

    def noise_bin(self, mean_acc: np.ndarray) -> np.ndarray:
        """The noise bin whose mean accuracy is closest to each of ``mean_acc``."""
        return np.searchsorted((self.noise_x[:-1] + self.noise_x[1:]) / 2, mean_acc)

    def noise_std(self, mean_acc: np.ndarray) -> np.ndarray:
        """The seed-to-seed standard deviation measured near ``mean_acc``."""
        return self.noise_y[self.noise_bin(mean_acc)]

    def draw(self, mean_acc: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Single-seed accuracies: ``mean`` plus a residual of its noise bin, picked by a uniform
        number in [0, 1) per architecture (from the caller's seeded generator)."""
        b = self.noise_bin(mean_acc)
        start, size = self.residual_starts[b], np.diff(self.residual_starts)[b]
        picks = self.residuals[start + np.minimum((uniforms * size).astype(np.intp), size - 1)]
        return np.clip(mean_acc + picks, 0.0, 1.0)

    # -- the file -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> int:
        """Write atomically as a compressed ``.npz``; returns the bytes written."""
        buf = io.BytesIO()
        arrays = {name: getattr(self, name) for name in ARRAY_NAMES}
        header = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, **self.header}
        np.savez_compressed(buf, header=np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
                            **arrays)
        atomic_write_bytes(path, buf.getvalue())
        return len(buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SurrogateModel:
        """:raises ConfigError: unreadable, damaged, not a surrogate model, or another format version."""
        fix = "refit it with scripts/fit_surrogate.py"
        try:
            arrays = load_arrays(path, ("header", *ARRAY_NAMES))
            header = json.loads(arrays.pop("header").tobytes().decode())
        except (NpzError, ValueError) as e:
            raise ConfigError(f"surrogate {path}: cannot be read ({' '.join(str(e).split())[:160]}); {fix}") from None
        if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
            raise ConfigError(f"surrogate {path}: not a nas-gym surrogate model; {fix}")
        if header.get("format_version") != MODEL_FORMAT_VERSION:
            raise ConfigError(f"surrogate {path}: format version {header.get('format_version')}, this nas-gym reads "
                              f"{MODEL_FORMAT_VERSION}; {fix}")
        problem = _arrays_problem(arrays, header)
        if problem:
            raise ConfigError(f"surrogate {path}: {problem}; {fix}")
        try:
            return cls(**arrays, header=header)
        except (ValueError, IndexError, TypeError) as e:
            raise ConfigError(f"surrogate {path}: its trees are malformed ({e}); {fix}") from None


def _arrays_problem(a: dict[str, np.ndarray], header: dict[str, Any]) -> str | None:
    """What makes the arrays unusable as a forest (None if nothing): shapes, index ranges and
    finiteness, so a damaged file is refused on load, never walked into an IndexError or a NaN."""
    n_features = header.get("n_features")
    if type(n_features) is not int or n_features < 1:
        return "its header has no feature count"
    ints = ("feature", "children", "roots", "tree_output", "residual_starts")
    if any(a[k].dtype.kind not in "iu" for k in ints) or any(a[k].dtype.kind != "f" for k in ARRAY_NAMES if k not in ints):
        return "an array has the wrong type"
    nodes = len(a["feature"])
    if a["children"].shape != (nodes, 2) or a["threshold"].shape != (nodes,) or a["value"].shape != (nodes,):
        return "its node arrays disagree in length"
    if nodes == 0 or a["roots"].ndim != 1 or a["roots"].shape != a["tree_output"].shape or len(a["baseline"]) != 2:
        return "it has no trees, or its tree arrays disagree in length"
    if a["children"].min() < 0 or a["children"].max() >= nodes or a["roots"].min() < 0 or a["roots"].max() >= nodes:
        return "a tree points outside its nodes"
    if a["feature"].min() < 0 or a["feature"].max() >= n_features or a["tree_output"].min() < 0 or a["tree_output"].max() > 1:
        return "a node tests a feature, or a tree adds to an output, that does not exist"
    if np.isnan(a["threshold"]).any() or not all(np.isfinite(a[k]).all() for k in ("value", "baseline", "noise_x",
                                                                                      "noise_y", "residuals")):
        return "it holds NaN or infinite values"
    starts, bins = a["residual_starts"], len(a["noise_x"])
    if (a["noise_y"].shape != (bins,) or bins == 0 or starts.shape != (bins + 1,) or starts[0] != 0
            or starts[-1] != len(a["residuals"]) or np.any(np.diff(starts) < 1) or np.any(np.diff(a["noise_x"]) < 0)):
        return "its noise model is malformed"
    return None


def _max_depth(children: np.ndarray, roots: np.ndarray) -> int:
    """Steps from a root to its deepest leaf, over all trees (breadth-first over node sets)."""
    node, depth = roots.copy(), 0
    while True:
        nxt = np.unique(children[node].ravel())
        if np.array_equal(np.sort(np.unique(node)), nxt):
            return depth
        if depth > len(children):  # deeper than there are nodes: the "trees" have a cycle
            raise ValueError("a tree has a cycle")
        node, depth = nxt, depth + 1
