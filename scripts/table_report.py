"""Print a learning-curve table's figures; see ``nas_gym/benchmarks/table_report.py``.

    python scripts/table_report.py --config mnist1d-noisy-cell --lines builds/mnist1d-noisy-cell-curves.jsonl
"""

from nas_gym.benchmarks.table_report import main

if __name__ == "__main__":
    raise SystemExit(main())
