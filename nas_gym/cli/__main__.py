"""``python -m nas_gym.cli``: the ``nas-gym`` command without its console script."""

import sys

from nas_gym.cli.main import app

if __name__ == "__main__":  # importing this module (tests walk every module) runs nothing
    sys.exit(app())
