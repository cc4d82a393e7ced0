"""Fit the surrogate model to the collected data, validate it, and ship it; or check a shipped one.

Usage::

    python scripts/fit_surrogate.py --config mnist1d            # fit, validate, write the model
    python scripts/fit_surrogate.py --config mnist1d --check    # refit from the shipped data, compare
    python scripts/fit_surrogate.py --validate-only --params '{"max_iter": 200, "learning_rate": 0.05}'
    python scripts/fit_surrogate.py --config mnist1d --references  # model vs seed references, one population

The data is ``nas_gym/surrogates/<preset>-data.jsonl.gz`` (``scripts/build_surrogate.py``);
the model goes to ``nas_gym/surrogates/<preset>.surrogate.npz`` with its validation metrics
(held-out 10%, leave-one-source-out, seed-to-seed agreement, parameter and FLOP baselines) in its
header, printed here as JSON. ``--check`` refits with the shipped model's own settings and
fails unless the metrics and every array come out identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nas_gym.config import ConfigError, load_config
from nas_gym.evaluators.surrogate import recipe_mismatch
from nas_gym.surrogates.data import SURROGATE_DIR, default_data_path, read_data
from nas_gym.surrogates.fit import HGB_PARAMS, fit_surrogate, seed_references, validate
from nas_gym.surrogates.model import ARRAY_NAMES, MODEL_SUFFIX, SurrogateModel


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="mnist1d", help="preset name or YAML path")
    p.add_argument("--data", default=None, help="data file; default nas_gym/surrogates/<preset>-data.jsonl.gz")
    p.add_argument("--out", default=None, help=f"model file; default nas_gym/surrogates/<preset>{MODEL_SUFFIX}")
    p.add_argument("--members", type=int, default=10, help="ensemble members (bootstrap resamples)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="refit the shipped model from the shipped data and compare")
    p.add_argument("--params", type=json.loads, default=None,
                   help="JSON object overriding HistGradientBoostingRegressor settings of the accuracy members")
    p.add_argument("--validate-only", action="store_true", help="print the validation metrics, write nothing")
    p.add_argument("--references", action="store_true",
                   help="print the model against another seed and the mean of the other seeds, on the multi-seed "
                        "architectures held out; write nothing")
    return p


def refit_and_compare(shipped: SurrogateModel, header: dict, rows: list, space) -> list[str]:
    """What differs between ``shipped`` and a refit with its own settings (empty: identical)."""
    h = shipped.header
    metrics = validate(rows, space, members=h["members"], seed=h["seed"], params=h["hgb_params"])
    refit = fit_surrogate(header, rows, space, members=h["members"], seed=h["seed"], metrics=metrics,
                          params=h["hgb_params"], time_params=h["time_params"])
    problems = []
    if refit.header["data_hash"] != h["data_hash"]:
        problems.append(f"data hash {refit.header['data_hash']} != shipped {h['data_hash']}")
    if metrics != h["metrics"]:
        problems.append(f"metrics differ: refit {json.dumps(metrics)} vs shipped {json.dumps(h['metrics'])}")
    problems += [f"array {name} differs" for name in ARRAY_NAMES
                 if not np.array_equal(getattr(refit, name), getattr(shipped, name))]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = load_config(args.config)
    space = config.search_space()
    header, rows = read_data(args.data or default_data_path(config.name))
    problem = recipe_mismatch(header, config)
    if problem:
        raise ConfigError(f"surrogate data does not fit config {config.name!r}: {problem}; collect it again with "
                          "scripts/build_surrogate.py")
    out = Path(args.out) if args.out else SURROGATE_DIR / f"{config.name}{MODEL_SUFFIX}"
    start = time.perf_counter()
    if args.check:
        problems = refit_and_compare(SurrogateModel.load(out), header, rows, space)
        for p in problems:
            print(f"check failed: {p}", file=sys.stderr)
        if not problems:
            print(f"check passed: a refit from {header['architectures']} architectures reproduces {out.name} "
                  f"(metrics and arrays) in {time.perf_counter() - start:.0f}s")
        return 1 if problems else 0
    params = {**HGB_PARAMS, **(args.params or {})}
    if args.references:
        print(json.dumps(seed_references(rows, space, members=args.members, seed=args.seed, params=params), indent=1))
        return 0
    metrics = validate(rows, space, members=args.members, seed=args.seed, params=params)
    if args.validate_only:
        print(json.dumps({"params": params, **metrics}, indent=1))
        return 0
    model = fit_surrogate(header, rows, space, members=args.members, seed=args.seed, metrics=metrics, params=params)
    size = model.save(out)
    print(json.dumps(metrics, indent=1))
    print(f"wrote {out}: {model.header['architectures']} architectures, {len(model.roots)} trees, "
          f"{len(model.value):,} nodes, {size:,} bytes; {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as e:
        sys.exit(f"error: {e}")
