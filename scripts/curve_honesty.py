"""Retrain members of a learning-curve table one at a time and compare every epoch; see
``nas_gym/benchmarks/curve_honesty.py``.

    python scripts/curve_honesty.py --config mnist1d-noisy-cell --lines builds/mnist1d-noisy-cell-curves.jsonl --cells 8
"""

from nas_gym.benchmarks.curve_honesty import main

if __name__ == "__main__":
    raise SystemExit(main())
