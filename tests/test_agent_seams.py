"""The declared seams between agents, the env and the search: agents get what they may use from
one ``AgentContext`` (never ``env.unwrapped``), ``BaseAgent`` declares every optional member with
its default, and the search reads those declarations instead of probing with ``hasattr``. The
last two tests read the source with ``ast``, so a new reach-through or probe fails here."""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from nas_gym.agents.base import BUILTIN_AGENTS, AgentError, BaseAgent, as_agent, declared, play, resolve_agent
from nas_gym.agents.context import AgentContext
from nas_gym.config import load_config
from nas_gym.envs.nas_env import NasEnv
from nas_gym.evaluators.base import EvalStats
from nas_gym.evaluators.prefetch import PrefetchEvaluator
from nas_gym.evaluators.synthetic import SyntheticEvaluator
from nas_gym.runs import checkpoint
from nas_gym.runs.recorder import RecordEpisodes, SearchLog
from nas_gym.runs.search import run_search

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nas_gym", "agents")


def _evaluator(preset: str = "mnist1d-tiny") -> SyntheticEvaluator:
    cfg = load_config(preset)
    return SyntheticEvaluator(cfg.search_space(), num_classes=cfg.num_classes)


# -- the context --------------------------------------------------------------------------------
def test_context_of_a_made_env_reads_its_public_attributes():
    evaluator = _evaluator()
    env = gym.make("NasGym/LayerChain-v0", config="mnist1d-tiny", evaluator=evaluator)
    context = AgentContext.of(env)
    assert context.space is evaluator.space and context.config.name == "mnist1d-tiny"
    assert context.batch_size == 1 and context.record_scalar is None  # nothing records outside a search


def test_context_in_a_search_sees_the_batching_and_the_recorder():
    """As ``run_search`` wraps it: the prefetching evaluator's batch size and hand-over, the recorder."""
    inner = _evaluator()
    log = SearchLog(None)
    env = RecordEpisodes(NasEnv("mnist1d-tiny", evaluator=PrefetchEvaluator(inner, batch_size=3)), log)
    context = AgentContext.of(env)
    assert context.batch_size == 3
    archs = [context.space.sample(__import__("numpy").random.default_rng(i)) for i in range(3)]
    context.prefetch(archs)
    assert inner.stats.evaluations == 3  # computed together, before any episode asks
    play(env, archs[0])
    assert log.episodes == 1 and inner.stats.evaluations == 3  # served the prefetched result
    assert context.record_scalar is not None and context.record_scalar.__self__ is env


def test_charge_seconds_reaches_the_evaluator_even_after_its_stats_are_replaced():
    evaluator = _evaluator()
    context = AgentContext.of(NasEnv("mnist1d-tiny", evaluator=evaluator))
    context.charge_seconds(2.5)
    assert evaluator.stats.train_seconds == pytest.approx(2.5)
    evaluator.load_state({"stats": dataclasses.asdict(EvalStats(train_seconds=10.0))})  # a resumed evaluator
    context.charge_seconds(1.0)
    assert evaluator.stats.train_seconds == pytest.approx(11.0)


def test_context_of_another_env_is_one_line():
    env = gym.make("CartPole-v1")
    assert AgentContext.find(env) is None
    with pytest.raises(AgentError) as e:
        AgentContext.of(env)
    assert "\n" not in str(e.value) and "needs a NasGym env" in str(e.value)


# -- the declared members -----------------------------------------------------------------------
class _Resumable(BaseAgent):
    def learn(self, episodes: int) -> None: ...

    def save(self, path) -> None: ...

    def load(self, path) -> None: ...


class _Asking(BaseAgent):
    """Asks the space's architectures in a fixed order; remembers what it is told."""

    def __init__(self, env, seed=0, hparams=None, logdir=None) -> None:
        super().__init__(env)
        self.archs = list(self.context.space.enumerate())[:5]
        self.told: list[tuple[str, float]] = []

    def ask(self):
        return self.archs[len(self.told)]

    def tell(self, arch, reward, info) -> None:
        self.told.append((arch.text(), reward))


def test_defaults_are_declared_and_save_load_make_an_agent_resumable():
    assert (BaseAgent.vectorized, BaseAgent.checkpoints_in_learn, BaseAgent.resumable, BaseAgent.ask_tell,
            BaseAgent.total_episodes) == (False, False, False, False, None)
    assert _Resumable.resumable and not _Resumable.ask_tell
    with pytest.raises(NotImplementedError, match="not resumable"):
        BaseAgent(None).save("x")


def test_an_ask_tell_agent_learns_by_playing_its_asks():
    env = gym.make("NasGym/LayerChain-v0", config="mnist1d-tiny", evaluator=_evaluator())
    agent = _Asking(env)
    assert agent.ask_tell and not agent.resumable
    agent.learn(4)
    expected = [(a.text(), play(gym.make("NasGym/LayerChain-v0", config="mnist1d-tiny", evaluator=_evaluator()), a)[0])
                for a in agent.archs[:4]]
    assert agent.told == expected


def test_every_builtin_declares_what_it_implements():
    for name in BUILTIN_AGENTS:
        cls = resolve_agent(name)
        assert issubclass(cls, BaseAgent), name
        overrides = cls.save is not BaseAgent.save and cls.load is not BaseAgent.load
        assert cls.resumable == overrides, name
        sb3 = name in {"ppo", "a2c", "dqn", "maskable_ppo"}
        assert cls.vectorized == cls.checkpoints_in_learn == sb3, name


def test_a_plain_class_agent_still_runs_a_search(tmp_path: Path):
    """A user's agent that is a plain class with ``learn(episodes)``: every option at its default."""
    path = tmp_path / "plain_agent.py"
    path.write_text(textwrap.dedent('''
        import numpy as np

        from nas_gym.agents.base import play
        from nas_gym.agents.context import AgentContext


        class Plain:
            def __init__(self, env, seed=0, hparams=None, logdir=None):
                self.env, self.rng, self.calls = env, np.random.default_rng(seed), []

            def learn(self, episodes):
                self.calls.append(episodes)
                for _ in range(episodes):
                    play(self.env, AgentContext.of(self.env).space.sample(self.rng))
    '''))
    spec = f"{path}:Plain"
    cls = resolve_agent(spec)
    assert declared(cls) is BaseAgent and not as_agent(cls(None)).resumable
    summary = run_search(load_config("mnist1d-tiny"), spec, 7, 0, tmp_path / "runs", evaluator=_evaluator(),
                         checkpoint_every=3)
    assert summary.episodes == 7 and summary.stats.evaluations == 7
    manifest = checkpoint.read_manifest(summary.run_dir)
    assert manifest.finished and manifest.checkpoint is None  # not resumable: nothing of it is saved


# -- the source ---------------------------------------------------------------------------------
def _modules() -> list[tuple[str, ast.Module]]:
    return [(str(p.relative_to(ROOT)), ast.parse(p.read_text(encoding="utf-8")))
            for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


def test_no_module_reaches_through_env_unwrapped():
    """``<something env>.unwrapped``: an agent or the search reaching beneath the env's wrappers.
    (An evaluator's own ``unwrapped`` is its protocol's and allowed.)"""
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "unwrapped":
                base = ast.unparse(node.value)
                if base.split(".")[-1].lower().endswith("env"):
                    found.append(f"{name}:{node.lineno} {ast.unparse(node)}")
    assert not found, "use AgentContext / the env's public attributes instead: " + "; ".join(found)


def _protocol_members(modules: list[tuple[str, ast.Module]]) -> set[str]:
    """Every member a Protocol class in the package declares, and BaseAgent's declared options."""
    members: set[str] = set()
    for _, tree in modules:
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
            if "Protocol" not in bases and node.name != "BaseAgent":
                continue
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
    return members - {"__init__", "__init_subclass__"}


# Probes of members another change turns into declared capabilities (space capability protocols:
# a supernet, a parameter count). Listed so that this test already guards every other module;
# an entry that is gone must leave this list, so the list never hides a new probe.
PENDING: set[tuple[str, str]] = set()


def test_no_hasattr_or_getattr_probes_a_declared_member():
    modules = _modules()
    members = _protocol_members(modules)
    assert {"learn", "save", "vectorized", "total_episodes", "batch_size", "prefetch", "sample"} <= members
    found = set()
    for name, tree in modules:
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in members):
                found.add((name, node.args[1].value))
    assert found - PENDING == set(), "declare it (BaseAgent, a Protocol) and read it instead of probing"
    assert PENDING <= found, f"no longer probed, remove from PENDING: {sorted(PENDING - found)}"


def test_the_supernet_evaluator_answers_batch_size_as_the_protocol_declares():
    """Its own training batch is ``training_batch()``; ``batch_size`` stays the protocol's int
    (architectures to propose at a time), so a context over it reads a number."""
    from nas_gym.evaluators.supernet import SupernetEvaluator

    cfg = load_config("mnist1d-cell")
    evaluator = SupernetEvaluator(cfg, store=None)
    assert AgentContext.of(NasEnv(cfg, evaluator=evaluator)).batch_size == 1


def test_a_flag_derived_for_a_parent_is_derived_again_for_its_child():
    """A parent without save/load is not resumable; its child that adds both is (the parent's
    derived flag is not a declaration the child inherits). A flag a class body sets is kept."""
    from nas_gym.agents.base import BaseAgent

    class Parent(BaseAgent):
        def learn(self, episodes: int) -> None: ...

    class Child(Parent):
        def save(self, path) -> None: ...

        def load(self, path) -> None: ...

    class Declined(Child):
        resumable = False

    class GrandChild(Declined):
        pass

    assert not Parent.resumable and Child.resumable
    assert not Declined.resumable and not GrandChild.resumable
