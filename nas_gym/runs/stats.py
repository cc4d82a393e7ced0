"""Tests for "beyond noise": one agent against another over seeds, corrected for how many were made.

A benchmark page that compares eight agents with random search makes eight tests; at a 5%
level, one of them passes by chance about a third of the time (1 - 0.95^8). Holm's step-down
correction (Holm 1979) keeps the chance of any false "beyond noise" at 5% for the whole family,
without assuming the tests are independent (they are not: all share random search's runs), and
is never less powerful than Bonferroni. Pages show the uncorrected p-value beside the corrected
one and decide by the corrected one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

ALPHA = 0.05


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (1.0 when every value on both sides is the same)."""
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(mannwhitneyu(list(a), list(b), alternative="two-sided").pvalue)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values of one family of tests, by name: the ``i``-th smallest (from 0)
    times ``m - i``, made non-decreasing in that order and capped at 1. A test passes the family
    at level ``alpha`` exactly when its adjusted p-value is below ``alpha``."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m = len(order)
    adjusted: dict[str, float] = {}
    running = 0.0
    for i, name in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[name]))
        adjusted[name] = running
    return adjusted


def against(baseline: str, samples: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    """Every sample against ``baseline``'s: name -> (uncorrected p, Holm-adjusted p), the family
    being all these comparisons."""
    raw = {name: mann_whitney(values, samples[baseline]) for name, values in samples.items() if name != baseline}
    adjusted = holm(raw)
    return {name: (raw[name], adjusted[name]) for name in raw}


def fmt_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
