"""Fitting the surrogate (scikit-learn) and measuring how well it ranks architectures.

The model: ``members`` ``HistGradientBoostingRegressor`` on ``space.features``, each fitted to a
bootstrap resample of the architectures (bagging: the members disagree where the data is thin,
and their mean is smoother than any one of them), predicting the mean validation accuracy over
the seeds each architecture was trained with; one more regressor for the log of the training
seconds. Architectures that failed to train are left out: the surrogate scores only networks
that train, and says so.

Everything is seeded, and scikit-learn's histogram trees are deterministic for a given seed and
data, so a refit from the shipped data gives the shipped model's metrics (``scripts/fit_surrogate.py --check``).
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from nas_gym.extras import require
from nas_gym.results import TRAINER_VERSION
from nas_gym.spaces.base import SearchSpace
from nas_gym.surrogates.data import data_hash
from nas_gym.surrogates.model import SurrogateModel, feature_fingerprint

# Few, mid-sized trees: a query walks every tree of every member, so the tree count is the
# query's cost (see ``nas_gym.surrogates.model``); the validation in docs/surrogate.md chose these.
HGB_PARAMS: dict[str, Any] = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 31, "max_depth": 7,
                              "min_samples_leaf": 8, "l2_regularization": 1.0, "early_stopping": False}
TIME_PARAMS: dict[str, Any] = {**HGB_PARAMS, "max_iter": 40}
NOISE_BINS = 6


@dataclass(frozen=True)
class TrainingSet:
    """The rows as arrays: features, the target (mean accuracy over the seeds trained), the
    first seed's accuracy alone, seconds, sources and the per-seed accuracies (nan: not trained)."""

    archs: list[str]
    features: np.ndarray
    target: np.ndarray
    first_seed: np.ndarray
    seconds: np.ndarray
    sources: list[list[str]]
    per_seed: np.ndarray


def training_set(rows: Sequence[dict[str, Any]], space: SearchSpace) -> tuple[TrainingSet, int]:
    """The architectures whose trainings all succeeded, and how many were left out as failures."""
    keep = [r for r in rows if all(s in ("ok", None) for s in r["status"]) and r["val_acc"][0] is not None]
    per_seed = np.array([[np.nan if v is None else v for v in r["val_acc"]] for r in keep], dtype=float)
    seconds = np.array([np.nanmean([np.nan if v is None else v for v in r["train_seconds"]]) for r in keep])
    feats = np.stack([space.features(space.parse(r["arch"])) for r in keep]) if keep else np.zeros((0, 0))
    ts = TrainingSet([r["arch"] for r in keep], feats, np.nanmean(per_seed, axis=1), per_seed[:, 0], seconds,
                     [r["sources"] for r in keep], per_seed)
    return ts, len(rows) - len(keep)


def _hgb(params: dict[str, Any], seed: int):
    ensemble = require("sklearn.ensemble", "fitting a surrogate")
    return ensemble.HistGradientBoostingRegressor(**params, random_state=seed)


def _one_thread():
    """Fit on one OpenMP thread: the same sums in the same order on every machine (a refit gives
    the shipped model), and on a shared 2-core machine many threads spin against each other
    (a fit took 20x longer with the default thread count while other work ran)."""
    return require("threadpoolctl", "fitting a surrogate").threadpool_limits(limits=1)


def fit_members(x: np.ndarray, y: np.ndarray, members: int, seed: int, params: dict[str, Any] | None = None) -> list:
    """``members`` regressors, member ``i`` on a bootstrap resample drawn from ``(seed, i)``."""
    models = []
    with _one_thread():
        for i in range(members):
            weights = np.random.default_rng([seed, i]).multinomial(len(y), np.full(len(y), 1.0 / len(y)))
            models.append(_hgb(params or HGB_PARAMS, seed + i).fit(x, y, sample_weight=weights.astype(float)))
    return models


def flatten(acc_models: Sequence, time_model) -> dict[str, np.ndarray]:
    """The fitted trees as the arrays ``SurrogateModel`` walks: accuracy trees (leaf values over
    the member count, so their sum is the members' mean), then the seconds trees."""
    feature, threshold, children, value, roots, outputs = [], [], [], [], [], []
    offset = 0
    groups = [(m, 1.0 / len(acc_models), 0) for m in acc_models] + [(time_model, 1.0, 1)]
    for model, scale, output in groups:
        for (predictor,) in model._predictors:  # one predictor per iteration (regression: one output)
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise ValueError("flatten: categorical splits are not supported")
            leaf = nodes["is_leaf"].astype(bool)
            local = np.arange(len(nodes))
            feature.append(np.where(leaf, 0, nodes["feature_idx"]))
            threshold.append(np.where(leaf, np.inf, nodes["num_threshold"]))
            children.append(offset + np.stack([np.where(leaf, local, nodes["left"]),
                                               np.where(leaf, local, nodes["right"])], axis=1))
            value.append(np.where(leaf, nodes["value"] * scale, 0.0))
            roots.append(offset)
            outputs.append(output)
            offset += len(nodes)
    baseline = np.array([np.mean([float(np.ravel(m._baseline_prediction)[0]) for m in acc_models]),
                         float(np.ravel(time_model._baseline_prediction)[0])])
    return {"feature": np.concatenate(feature).astype(np.int32), "threshold": np.concatenate(threshold),
            "children": np.concatenate(children).astype(np.int32), "value": np.concatenate(value),
            "roots": np.array(roots, dtype=np.int32), "tree_output": np.array(outputs, dtype=np.int8),
            "baseline": baseline}


def fit_noise(per_seed: np.ndarray, bins: int = NOISE_BINS) -> dict[str, np.ndarray]:
    """Seed noise from architectures trained under at least 3 seeds, in quantile bins of their
    mean accuracy (fewer bins when there are fewer than 10 architectures per bin): per bin, the
    mean accuracy, the pooled standard deviation, and every seed's deviation from its
    architecture's mean (sorted), as ``SurrogateModel``'s noise arrays.

    Deviations are scaled by ``sqrt(n / (n - 1))``: a deviation from the mean of n seeds is
    smaller than one from the true mean, which is what a drawn seed should deviate from.
    """
    n = np.sum(~np.isnan(per_seed), axis=1)
    multi = per_seed[n >= 3]
    if len(multi) < 5:
        raise ValueError(f"fit_noise: need at least 5 architectures trained under >= 3 seeds, got {len(multi)}")
    bins = max(1, min(bins, len(multi) // 10))
    counts = np.sum(~np.isnan(multi), axis=1)
    means = np.nanmean(multi, axis=1)
    deviations = (multi - means[:, None]) * np.sqrt(counts / (counts - 1))[:, None]
    xs, ys, residuals, starts = [], [], [], [0]
    for chunk in np.array_split(np.argsort(means, kind="stable"), bins):
        d = deviations[chunk][~np.isnan(deviations[chunk])]
        xs.append(float(means[chunk].mean()))
        ys.append(float(np.sqrt(np.mean(d**2))))
        residuals.append(np.sort(d))
        starts.append(starts[-1] + len(d))
    return {"noise_x": np.array(xs), "noise_y": np.array(ys), "residuals": np.concatenate(residuals),
            "residual_starts": np.array(starts, dtype=np.int64)}


def fit_surrogate(header: dict[str, Any], rows: Sequence[dict[str, Any]], space: SearchSpace, members: int = 10,
                  seed: int = 0, metrics: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                  time_params: dict[str, Any] | None = None) -> SurrogateModel:
    """The shipped model: fitted on every successful row of the data.

    :param params: the accuracy members' hyperparameters (default ``HGB_PARAMS``).
    :param time_params: the seconds regressor's (default ``TIME_PARAMS``).
    """
    sklearn = require("sklearn", "fitting a surrogate")
    params, time_params = params or HGB_PARAMS, time_params or TIME_PARAMS
    ts, failed = training_set(rows, space)
    acc = fit_members(ts.features, ts.target, members, seed, params)
    with _one_thread():
        clock = _hgb(time_params, seed).fit(ts.features, np.log(ts.seconds))
    model_header = {
        "preset": header["preset"], "config": header["config"], "seeds": header["seeds"],
        "context_hashes": header["context_hashes"], "trainer_version": header.get("trainer_version", TRAINER_VERSION),
        "numerics": header.get("numerics", {}),
        "data_hash": data_hash(rows), "architectures": len(ts.archs), "failures_left_out": failed,
        "members": members, "seed": seed, "hgb_params": params, "time_params": time_params,
        "n_features": int(ts.features.shape[1]), "feature_fingerprint": feature_fingerprint(space),
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "metrics": metrics or {},
    }
    return SurrogateModel(**flatten(acc, clock), **fit_noise(ts.per_seed), header=model_header)


# -- validation -------------------------------------------------------------------------------
def rank_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Kendall tau, sparse Kendall tau (both rounded to 0.1%, as NAS-Bench-301), Spearman, R²."""
    tau = stats.kendalltau(pred, truth).statistic
    sparse = stats.kendalltau(np.round(pred, 3), np.round(truth, 3)).statistic
    rho = stats.spearmanr(pred, truth).statistic
    r2 = 1.0 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2)
    return {"n": int(len(truth)), "kendall_tau": round(float(tau), 4), "sparse_kendall_tau": round(float(sparse), 4),
            "spearman": round(float(rho), 4), "r2": round(float(r2), 4)}


def _baselines(ts: TrainingSet, test: np.ndarray, rows_by_arch: dict[str, dict]) -> dict[str, float]:
    truth = ts.first_seed[test]
    out = {}
    for name in ("params", "flops"):
        values = np.array([rows_by_arch[a][name] for a in np.array(ts.archs)[test]], dtype=float)
        out[f"{name}_kendall_tau"] = round(float(stats.kendalltau(values, truth).statistic), 4)
    return out


def split_metrics(ts: TrainingSet, train: np.ndarray, test: np.ndarray, members: int, seed: int,
                  rows_by_arch: dict[str, dict], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit on ``train`` rows, score on ``test`` rows against the first seed's accuracy (what a
    search sees), beside parameter count and FLOPs alone."""
    return _scores(ts, test, _fit_predict(ts, train, test, members, seed, params), rows_by_arch)


def _fit_predict(ts: TrainingSet, train: np.ndarray, test: np.ndarray, members: int, seed: int,
                 params: dict[str, Any] | None) -> np.ndarray:
    models = fit_members(ts.features[train], ts.target[train], members, seed, params)
    return np.mean([m.predict(ts.features[test]) for m in models], axis=0)


def _scores(ts: TrainingSet, test: np.ndarray, pred: np.ndarray, rows_by_arch: dict[str, dict]) -> dict[str, Any]:
    return {**rank_metrics(pred, ts.first_seed[test]), **_baselines(ts, test, rows_by_arch)}


def _seconds_metrics(ts: TrainingSet, train: np.ndarray, test: np.ndarray, seed: int) -> dict[str, float]:
    """How well the clock is predicted: R² of log seconds and the median relative error."""
    with _one_thread():
        model = _hgb(TIME_PARAMS, seed).fit(ts.features[train], np.log(ts.seconds[train]))
    pred, truth = model.predict(ts.features[test]), np.log(ts.seconds[test])
    r2 = 1.0 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2)
    return {"n": int(len(test)), "r2_log": round(float(r2), 4),
            "median_relative_error": round(float(np.median(np.abs(np.exp(pred - truth) - 1.0))), 4)}


def seed_ceiling(ts: TrainingSet) -> dict[str, Any]:
    """Kendall tau between two training seeds of the same architectures, averaged over seed pairs:
    a reference for the model's tau against one seed, on the multi-seed architectures only. Kept
    under its old key ``seed_ceiling`` in the model header, but not a ceiling: a model of the
    mean accuracy can beat one other seed (see :func:`seed_references`)."""
    k = ts.per_seed.shape[1]
    taus, n = [], 0
    for i in range(k):
        for j in range(i + 1, k):
            both = ~np.isnan(ts.per_seed[:, i]) & ~np.isnan(ts.per_seed[:, j])
            if both.sum() >= 10:
                taus.append(stats.kendalltau(ts.per_seed[both, i], ts.per_seed[both, j]).statistic)
                n = max(n, int(both.sum()))
    multi = np.sum(~np.isnan(ts.per_seed), axis=1) >= 2
    std = float(np.sqrt(np.nanmean(np.nanvar(ts.per_seed[multi], axis=1, ddof=1)))) if multi.any() else float("nan")
    return {"architectures": n, "seed_pairs": len(taus), "kendall_tau": round(float(np.mean(taus)), 4) if taus else None,
            "seed_std": round(std, 4)}


def validate(rows: Sequence[dict[str, Any]], space: SearchSpace, members: int = 10, seed: int = 0,
             held_out: float = 0.1, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Held-out split, leave-one-source-out per agent, and the seed-to-seed agreement."""
    ts, failed = training_set(rows, space)
    rows_by_arch = {r["arch"]: r for r in rows}
    n = len(ts.archs)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(held_out * n)))
    train, test = np.sort(perm[n_test:]), np.sort(perm[:n_test])
    result: dict[str, Any] = {"architectures": n, "failures_left_out": failed,
                              "held_out": split_metrics(ts, train, test, members, seed, rows_by_arch, params)}
    # the same split with only the agents' observation of the finished architecture (one-hots,
    # depth, final size): what the space's extra features (sizes, widths, cost, receptive
    # field) add to it
    observed = dataclasses.replace(ts, features=np.stack([space.observe(space.parse(a)) for a in ts.archs]))
    result["held_out_observation_only"] = split_metrics(observed, train, test, members, seed, rows_by_arch, params)
    loso = {}
    for source in sorted({s for srcs in ts.sources for s in srcs} - {"uniform"}):
        test = np.array([source in srcs for srcs in ts.sources])
        if test.sum() >= 10:
            loso[source] = split_metrics(ts, np.flatnonzero(~test), np.flatnonzero(test), members, seed, rows_by_arch,
                                         params)
    result["leave_one_source_out"] = loso
    multi = np.sum(~np.isnan(ts.per_seed), axis=1) >= 3
    if multi.sum() >= 10:
        # the seed-noise set held out: the model against one seed (the seed-to-seed terms) and
        # against the mean of all seeds (what it is fitted to predict)
        test = np.flatnonzero(multi)
        pred = _fit_predict(ts, np.flatnonzero(~multi), test, members, seed, params)
        result["seed_set_held_out"] = {**_scores(ts, test, pred, rows_by_arch),
                                       "vs_seed_mean": rank_metrics(pred, ts.target[test])}
    result["seconds_held_out"] = _seconds_metrics(ts, np.sort(perm[n_test:]), np.sort(perm[:n_test]), seed)
    result["seed_ceiling"] = seed_ceiling(ts)
    return result


def seed_references(rows: Sequence[dict[str, Any]], space: SearchSpace, members: int = 10, seed: int = 0,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model and two references, all on one population: the architectures trained under
    at least 3 seeds, held out of the fit. Each is scored against every single seed in turn
    (Kendall tau, averaged over the held-out seed):

    * ``model``: the surrogate fitted without these architectures;
    * ``another_seed``: one other training seed (averaged over the ordered pairs);
    * ``mean_of_other_seeds``: the mean of all the other seeds, the best predictor of one seed
      that these data hold, and a better one than another single seed.

    Neither reference bounds the model: a model of the mean accuracy can beat one other seed,
    and fitted to enough data it could approach the mean of the others. The held-out 10% in
    :func:`validate` has one seed for most architectures, so it has no such references.
    """
    ts, _ = training_set(rows, space)
    counts = np.sum(~np.isnan(ts.per_seed), axis=1)
    multi = np.flatnonzero(counts >= 3)
    if len(multi) < 10:
        raise ValueError(f"seed_references: need at least 10 architectures trained under >= 3 seeds, got {len(multi)}")
    pred = _fit_predict(ts, np.flatnonzero(counts < 3), multi, members, seed, params)
    acc = ts.per_seed[multi]
    k = acc.shape[1]
    model, other_seed, other_mean = [], [], []
    for j in range(k):
        has = ~np.isnan(acc[:, j])
        if has.sum() < 10:
            continue
        model.append(stats.kendalltau(pred[has], acc[has, j]).statistic)
        others = np.delete(acc[has], j, axis=1)
        other_mean.append(stats.kendalltau(np.nanmean(others, axis=1), acc[has, j]).statistic)
        for i in range(k):
            both = has & ~np.isnan(acc[:, i])
            if i != j and both.sum() >= 10:
                other_seed.append(stats.kendalltau(acc[both, i], acc[both, j]).statistic)
    return {"architectures": int(len(multi)), "seeds": int(k),
            "model_kendall_tau": round(float(np.mean(model)), 4),
            "another_seed_kendall_tau": round(float(np.mean(other_seed)), 4),
            "mean_of_other_seeds_kendall_tau": round(float(np.mean(other_mean)), 4)}
