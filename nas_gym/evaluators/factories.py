"""One function per evaluator kind, named by the registry (``nas_gym.evaluator_kinds``) and
called by ``make_evaluator``: each imports its evaluator only when one is made, so naming a kind
imports no torch.

Every factory takes ``(config, kind, *, data, cache, backend, run_seed)`` and uses what its kind
needs: ``data`` (an already-loaded dataset), ``cache`` and ``backend`` (``train``), ``run_seed``
(the search's seed, for kinds that draw noise per run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas_gym.config import Config
    from nas_gym.evaluators.base import Evaluator


def make_training(config: Config, kind: str, *, data: Any, cache: Any, backend: Any, run_seed: int) -> Evaluator:
    """Real training; with ``evaluator.high_epochs``, the multi-fidelity pair on one pool."""
    from nas_gym.evaluators.training import TrainingEvaluator

    low = TrainingEvaluator(config, data=data, cache=cache, backend=backend)
    if config.evaluator.high_epochs is None:
        return low
    from nas_gym.config import load_config
    from nas_gym.evaluators.multi_fidelity import MultiFidelityEvaluator, with_fidelity

    # Same cache file, other context hash: each fidelity is cached (and resumed) separately.
    single = load_config(config, {"evaluator.high_epochs": None})
    high_config = with_fidelity(single, epochs=config.evaluator.high_epochs)
    # In this process, both fidelities train on the one copy of the data the low one loaded;
    # with workers, both send their tasks to the one pool the low one started (``with_config``).
    shared = low.data if config.evaluator.backend == "serial" else data
    high = TrainingEvaluator(high_config, data=shared, cache=cache, backend=low.backend)
    return MultiFidelityEvaluator(low, high, promote_top=config.evaluator.promote_top)


def make_synthetic(config: Config, kind: str, *, data: Any, cache: Any, backend: Any, run_seed: int) -> Evaluator:
    from nas_gym.evaluators.synthetic import SyntheticEvaluator

    return SyntheticEvaluator(config.search_space(), seed=config.train.seed, num_classes=config.num_classes)


def make_proxy(config: Config, kind: str, *, data: Any, cache: Any, backend: Any, run_seed: int) -> Evaluator:
    from nas_gym.evaluators.proxy import ProxyEvaluator

    return ProxyEvaluator(config, kind.removeprefix("proxy:"), data=data)


def make_table(config: Config, kind: str, *, data: Any, cache: Any, backend: Any, run_seed: int) -> Evaluator:
    from nas_gym.evaluators.table import TableEvaluator

    return TableEvaluator(config, seed=config.evaluator.table_seed, path=config.evaluator.table_file, run_seed=run_seed,
                          epochs=config.evaluator.epochs)


def make_surrogate(config: Config, kind: str, *, data: Any, cache: Any, backend: Any, run_seed: int) -> Evaluator:
    from nas_gym.evaluators.surrogate import SurrogateEvaluator

    return SurrogateEvaluator(config, run_seed=run_seed)


def make_supernet(config: Config, kind: str, *, data: Any, cache: Any, backend: Any, run_seed: int) -> Evaluator:
    from nas_gym.evaluators.supernet import SupernetEvaluator

    return SupernetEvaluator(config, data=data)
