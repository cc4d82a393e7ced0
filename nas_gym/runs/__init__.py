"""Running searches and keeping what they leave: the search driver, checkpoints, the run log,
the recorder and TensorBoard, figures, the leaderboard, comparisons and retraining. Above the
agents and below the CLI: nothing under ``nas_gym`` but the CLI imports from here."""
