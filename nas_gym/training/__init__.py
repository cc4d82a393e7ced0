"""Training one network, or several in one pass: the device, the optimiser step, the loop, the
multi-member module and the model rewrite. Below the evaluators and above spaces and data:
nothing here knows about caches, budgets, agents or runs."""
