"""The env (one class over any search space) and the batched vector env."""
