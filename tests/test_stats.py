"""Holm's correction and the Mann-Whitney test behind every "beyond noise" on the pages."""

from __future__ import annotations

import numpy as np
import pytest

from nas_gym.runs.stats import against, holm, mann_whitney


def test_holm_by_hand():
    # sorted: d 0.005 x4 = 0.02, a 0.01 x3 = 0.03, c 0.03 x2 = 0.06, b 0.04 x1 = 0.04 -> kept at 0.06
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02})


def test_eight_comparisons_with_random_as_the_page_made_them():
    """The layer-chain page's eight p-values against random search (five printed as < 0.001):
    uncorrected, evolution (0.025) and DQN (0.018) pass 0.05; Holm over the eight does not."""
    raw = {"evolution": 0.025, "qlearning": 0.394, "reinforce": 0.0009, "ppo": 0.0009, "maskable_ppo": 0.0009,
           "dqn": 0.018, "a2c": 0.0009, "greedy": 0.0009}
    adjusted = holm(raw)
    assert adjusted["dqn"] == pytest.approx(3 * 0.018) and adjusted["evolution"] == pytest.approx(3 * 0.018)
    assert {k for k, v in adjusted.items() if v < 0.05} == {"reinforce", "ppo", "maskable_ppo", "a2c", "greedy"}


def test_holm_never_lowers_and_keeps_the_order():
    rng = np.random.default_rng(0)
    raw = {str(i): float(p) for i, p in enumerate(rng.random(12) ** 3)}
    adjusted = holm(raw)
    assert all(adjusted[k] >= raw[k] for k in raw) and max(adjusted.values()) <= 1.0
    by_raw = sorted(raw, key=raw.get)
    assert [adjusted[k] for k in by_raw] == sorted(adjusted[k] for k in by_raw)


def test_against_a_baseline():
    rng = np.random.default_rng(1)
    samples = {"random": list(rng.normal(0, 1, 40)), "same": list(rng.normal(0, 1, 40)),
               "better": list(rng.normal(1.5, 1, 40))}
    result = against("random", samples)
    assert set(result) == {"same", "better"}
    assert result["better"][1] < 0.001 and result["same"][1] > 0.05
    assert result["better"][0] == pytest.approx(mann_whitney(samples["better"], samples["random"]))
    assert mann_whitney([1.0, 1.0], [1.0, 1.0]) == 1.0
