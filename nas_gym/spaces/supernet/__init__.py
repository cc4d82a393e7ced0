"""What every space's supernet shares: the layers one is made of (``layers``: path-aware batch
norm) and what a supernet answers and how one path is scored (``base``). A space builds its
supernet from these (``SearchSpace.build_supernet``); ``nas_gym.oneshot`` trains it."""
