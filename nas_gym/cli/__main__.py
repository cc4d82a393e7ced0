"""``python -m nas_gym.cli``: the ``nas-gym`` command without its console script."""

import sys

from nas_gym.cli.main import app

sys.exit(app())
