"""Search agents on a table at equal simulated training time; see ``nas_gym/runs/bench_search.py``.

    python scripts/bench_search.py [--config mnist1d-tiny] [--seeds 50] [--budget-seconds S]
"""

from nas_gym.runs.bench_search import main

if __name__ == "__main__":
    main()
