"""Surrogate benchmarks: the shipped models and the real trainings they were fitted to.

``data`` reads and writes the training data (``<preset>-data.jsonl.gz``), ``model`` the
fitted model file and its fast prediction, ``fit`` the fitting and validation (scikit-learn).
Nothing here imports torch at import time.
"""
