"""Benchmark builders: learning-curve tables trained in grouped passes (``curves``)."""
