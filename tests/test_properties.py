"""Property-based tests: whatever text or config comes in, the answer is a value or the
project's own one-line error, never another exception.

Inputs are built from a grammar of near-valid tokens (real op names, their typos, digits,
separators) mixed with arbitrary text, so most examples land close to the boundary between
accepted and rejected, where parsers break.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from nas_gym.cli import app
from nas_gym.config import Config, ConfigError, load_config
from nas_gym.spaces.base import ArchitectureError
from nas_gym.spaces.layer_chain.chain import Chain
from nas_gym.spaces.layer_chain.space import LayerChainSpace

# A space with every kind of op, so that validation rules (pooling after pooling, dropout after
# dropout, spatial size running out) are all reachable.
SPACE = LayerChainSpace.from_texts(["conv3-16", "conv5-32s2", "res3-16", "maxpool", "avgpool", "dropout0.25"],
                               max_depth=5, input_size=8)
FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

TOKENS = ["conv", "res", "maxpool", "avgpool", "dropout", "maxpol", "pool", "conv3-16", "conv5-32s2", "res3-16",
          "dropout0.25", "dropout.5", "dropout1.5", "dropout1e-05", "-", "s", "s2", "s3", ".", "0", "3", "4", "16",
          "007", "99999999999", " ", "\t", "\n", "|", "||", "٣", "é"]


def assert_one_line(error: BaseException) -> None:
    message = str(error)
    assert message and len(message.splitlines()) == 1 and message == message.strip(), repr(message)


def op_texts() -> st.SearchStrategy[str]:
    near = st.lists(st.one_of(st.sampled_from(TOKENS), st.integers(0, 10**12).map(str)), min_size=1, max_size=4)
    return st.one_of(st.sampled_from([op.text() for op in SPACE.ops]), near.map("".join), st.text(max_size=6))


arch_texts = st.lists(op_texts(), max_size=7).map("|".join) | st.text(max_size=20)


@FAST
@given(arch_texts)
def test_architecture_text_parses_or_fails_with_one_line(text: str) -> None:
    try:
        arch = Chain.parse(text)
    except ArchitectureError as e:
        assert_one_line(e)
        return
    again = Chain.parse(arch.text())
    assert again == arch and again.key() == arch.key() and again.text() == arch.text()
    try:
        validated = SPACE.validate(text)
    except ArchitectureError as e:
        assert_one_line(e)
        assert not SPACE.is_valid(arch)
        return
    assert validated == arch and SPACE.is_valid(arch)
    for i, op in enumerate(arch.ops):  # what validate accepts, the action masks allow step by step
        assert SPACE.mask(arch.ops[:i])[SPACE.action_of(op)]
    assert SPACE.mask(arch)[SPACE.stop_action]


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out += _fields(sub, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


FIELDS = _fields(Config)
SECTIONS = [name for name, info in Config.model_fields.items() if isinstance(info.annotation, type)
            and issubclass(info.annotation, BaseModel)]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["auto", "cpu", "cuda:1", "train", "synthetic", "proxy:snip",
                                                          "mnist1d", "cifar100", "adamw", "cosine", "mnas", "params",
                                                          "1e6", "-1", "0", "null", "latency", "process"]))
values = st.one_of(scalars, st.lists(st.one_of(op_texts(), scalars), max_size=4),
                   st.dictionaries(st.text(max_size=5), scalars, max_size=2))
keys = st.one_of(st.sampled_from(FIELDS), st.sampled_from(SECTIONS),
                 st.tuples(st.sampled_from(SECTIONS), st.text(max_size=6)).map(".".join), st.text(max_size=8))
overrides = st.dictionaries(keys, values, max_size=4)


def _check_config(source: Any, extra: dict[str, Any] | None) -> None:
    try:
        cfg = load_config(source, extra)
    except ConfigError as e:
        assert_one_line(e)
        return
    assert cfg.search_space().size() >= 1  # an accepted config can always be searched
    assert load_config(cfg) == cfg and len(cfg.context_hash()) == 20


@settings(FAST, max_examples=150)
@given(overrides)
def test_random_overrides_load_or_fail_with_one_line(extra: dict[str, Any]) -> None:
    _check_config("mnist1d-tiny", extra)


@settings(FAST, max_examples=60)
@given(st.one_of(st.dictionaries(st.sampled_from(SECTIONS + ["name", "bogus"]), st.dictionaries(keys, values, max_size=3)
                                 | scalars, max_size=5).map(lambda d: yaml.safe_dump(d)),
                 st.text(max_size=40)))
def test_random_yaml_files_load_or_fail_with_one_line(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.yaml"
        path.write_text(text)
        _check_config(path, None)


runner = CliRunner()


def _check_cli(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 2), (args, result.output, result.exception)
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output


@settings(FAST, max_examples=12)
@given(arch_texts)
def test_cli_eval_exits_0_or_2(text: str) -> None:
    _check_cli(["eval", "--config", "mnist1d-tiny", "--set", "evaluator.kind=synthetic", "--", text])


@settings(FAST, max_examples=6)
@given(st.lists(st.tuples(st.sampled_from(FIELDS), st.one_of(st.text(max_size=8), st.sampled_from(
    ["1e6", "-1", "[", "0.5", "null", "[conv3-16, maxpol]", "'x: y'", ".nan", "2"]))), max_size=2))
def test_cli_search_with_random_settings_exits_0_or_2(settings_: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        args = ["search", "--config", "mnist1d-tiny", "--agent", "random", "--episodes", "1", "--evaluator",
                "synthetic", "--logdir", folder, "--set", f"evaluator.cache={folder}/c.sqlite"]
        for key, value in settings_:
            args += ["--set", f"{key}={value}"]
        _check_cli(args)
