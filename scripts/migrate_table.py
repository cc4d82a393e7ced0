"""Migrate a format-1 table to format 2; the logic is ``nas_gym/benchmarks/migrate_table.py``, this file its command line."""

import sys

from nas_gym.benchmarks.migrate_table import main

if __name__ == "__main__":
    sys.exit(main())
