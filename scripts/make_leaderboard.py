"""Build the agents' leaderboard; the logic is ``nas_gym/runs/leaderboard_build.py``, this file its command line."""

import sys

from nas_gym.runs.leaderboard_build import main

if __name__ == "__main__":
    sys.exit(main())
