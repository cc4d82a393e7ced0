"""The leaderboard page and figures, written from the board's JSON alone.

The page is a function of ``leaderboard.json``: nothing on it is typed by hand or read from
anywhere else, so the numbers and the machine-readable file never disagree, and the same runs give
the same page byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.runs.agent_board import ANYTIME_AT, primary
from nas_gym.runs.anytime import GRID_POINTS
from nas_gym.runs.board_absent import absent_lines
from nas_gym.runs.stats import ALPHA

TITLE = "# Agents' leaderboard"
COMPARE_YOURS = ("python scripts/make_leaderboard.py --benchmarks mnist1d-tiny --agents my_agent.py:MyAgent "
                 "--seeds 10 --runs runs/mine --against docs/leaderboard.json --out my-board")


def _known(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _quart(values: list[float | None], scale: float = 100.0) -> str:
    v = _known(values)
    if not v:
        return "-"
    q25, med, q75 = scale * np.percentile(np.array(v), [25, 50, 75])  # as the anytime quartiles: scaled after
    return f"{med:.2f} [{q25:.2f}, {q75:.2f}]"


def _mean_std(values: list[float | None], scale: float = 100.0, digits: int = 2) -> str:
    v = np.array(_known(values)) * scale
    if not len(v):
        return "-"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f}"


def _p(p: float | None) -> str:
    return "" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def ranked(section: Mapping[str, Any]) -> list[str]:
    """Agents by median primary value, best first (then mean; then name, for a stable order)."""
    metric = primary(section)

    def key(agent: str) -> tuple[float, float, str]:
        v = _known(section["agents"][agent]["per_seed"][metric])
        return (-float(np.median(v)) if v else np.inf, -float(np.mean(v)) if v else np.inf, agent)

    return sorted(section["agents"], key=key)


def final_table(section: Mapping[str, Any]) -> str:
    metric = primary(section)
    label = {"test_acc": "test acc % of pick", "mean_val_acc": "mean val acc % of pick (noise-free)"}.get(
        metric, "val acc % of pick (as seen)")
    header = ["rank", "agent", "seeds", f"{label}: median [q25, q75]", "mean ± std", "regret (val points)",
              "p vs random: MWU / Holm", "budget used", "repeats", f"{label}, repeats charged", "evaluations: free / charged"]
    lines = ["| " + " | ".join(header) + " |", "|---:|---|" + "---:|" * (len(header) - 2)]
    for i, agent in enumerate(ranked(section), 1):
        e = section["agents"][agent]
        s = e["per_seed"]
        used = _known(s["budget_used"])
        p = "" if e.get("p_mwu_vs_random") is None else f"{_p(e['p_mwu_vs_random'])} / {_p(e['p_holm_vs_random'])}"
        charged = s[f"{metric}_charged"] if f"{metric}_charged" in s else [None]
        ev, evc = _known(s["evaluations"]), _known(s["evaluations_charged"])
        lines.append("| " + " | ".join([
            str(i), agent, str(len(e["seeds"])), _quart(s[metric]), _mean_std(s[metric]), _mean_std(s["regret"]), p,
            f"{100 * np.mean(used):.0f}%" if used else "-", f"{np.mean(_known(s['repeats'])):.0f}",
            _quart(charged) if _known(charged) else "-",
            (f"{np.mean(ev):.0f} / {np.mean(evc):.0f}" if evc else f"{np.mean(ev):.0f} / -") if ev else "-",
        ]) + " |")
    return "\n".join(lines)


def anytime_table(section: Mapping[str, Any]) -> str:
    """The median (quartiles) of the incumbent's primary value at fractions of the budget."""
    metric = primary(section)
    grid = np.array(section["conditions"]["grid_seconds"])
    cols = [int(np.argmin(np.abs(grid - f * grid[-1]))) for f in ANYTIME_AT]
    header = ["agent", *(f"{grid[j]:g} s ({100 * grid[j] / grid[-1]:.0f}%)" for j in cols)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(cols)]
    for agent in ranked(section):
        band = section["agents"][agent]["anytime"].get(metric)
        cells = []
        for j in cols:
            med = None if band is None else band["median"][j]
            cells.append("-" if med is None else f"{100 * med:.2f} [{100 * band['q25'][j]:.2f}, {100 * band['q75'][j]:.2f}]")
        lines.append("| " + " | ".join([agent, *cells]) + " |")
    return "\n".join(lines)


def verdict(section: Mapping[str, Any], agent: str) -> str:
    """"better" or "worse" than random search beyond noise (Holm-corrected p below ALPHA, the
    side read off the means), or "" when within noise or not tested."""
    e = section["agents"][agent]
    if e.get("p_holm_vs_random") is None or e["p_holm_vs_random"] >= ALPHA:
        return ""
    metric = primary(section)
    base = float(np.mean(_known(section["agents"]["random"]["per_seed"][metric])))
    return "better" if np.mean(_known(e["per_seed"][metric])) > base else "worse"


def glance(board: Mapping[str, Any]) -> str:
    """One row per agent, one column per section: the median of what its runs return, marked
    where it is beyond noise of random search; the sections below hold the rest."""
    from nas_gym.agents.base import BUILTIN_AGENTS

    keys = list(board["sections"])
    found = {a for key in keys for a in board["sections"][key]["agents"]}
    order = ["random", *(a for a in BUILTIN_AGENTS if a != "random")]  # the baseline first, then the registry's order
    agents = [a for a in order if a in found] + sorted(found - set(order))
    mark = {"better": " (+)", "worse": " (-)", "": ""}
    lines = ["| agent | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for agent in agents:
        cells = []
        for key in keys:
            section = board["sections"][key]
            if agent not in section["agents"]:
                cells.append("")
                continue
            v = _known(section["agents"][agent]["per_seed"][primary(section)])
            cells.append(f"{100 * float(np.median(v)):.2f}{mark[verdict(section, agent)]}" if v else "-")
        lines.append("| " + " | ".join([agent, *cells]) + " |")
    return "\n".join(lines)


def notes(section: Mapping[str, Any]) -> list[str]:
    """Statements read off the numbers, so they stay true when the page is regenerated."""
    out = []
    agents = section["agents"]
    tested = {a: e for a, e in agents.items() if e.get("p_holm_vs_random") is not None}
    if tested:
        better = [a for a in tested if verdict(section, a) == "better"]
        worse = [a for a in tested if verdict(section, a) == "worse"]
        lucky = [a for a, e in tested.items() if e["p_mwu_vs_random"] < ALPHA <= e["p_holm_vs_random"]]
        out.append(f"Beyond noise against random search (Holm-corrected p < {ALPHA} over the {len(tested)} comparisons): "
                   f"better: {', '.join(better) or 'none'}; worse: {', '.join(worse) or 'none'}"
                   + (f"; uncorrected p < {ALPHA} only: {', '.join(lucky)}." if lucky else "."))
    short = [f"{a} ({100 * np.mean(_known(e['per_seed']['budget_used'])):.0f}%)" for a, e in agents.items()
             if _known(e["per_seed"]["budget_used"]) and np.mean(_known(e["per_seed"]["budget_used"])) < 0.95]
    if short:
        out.append("Spent under 95% of the budget on average with repeats free (they re-proposed cached "
                   f"architectures until the episode cap): {', '.join(short)}; the repeats-charged columns show "
                   "what they return when every query is charged, as NATS-Bench charges.")
    return out + absent_lines(section.get("absent", {}))


def section_text(key: str, section: Mapping[str, Any], image: str) -> str:
    c = section["conditions"]
    f = c["benchmark_file"]
    seeds = sorted({len(e["seeds"]) for e in section["agents"].values()})
    opt = "" if c.get("optimum_val") is None else (
        f" Optimum by mean validation accuracy {100 * c['optimum_val']:.2f}%"
        + ("" if c.get("optimum_test") is None else f", its test accuracy {100 * c['optimum_test']:.2f}%") + ".")
    parts = [
        f"## {key}",
        f"{c['about']}: preset `{c['preset']}`, evaluator `{c['evaluator']}`"
        + (f", {c['space_size']:,} distinct architectures" + (" in the table" if c["evaluator"] == "table" else "")
           if c.get("space_size") else "") + "."
        + f" Budget **{c['budget_seconds']:g} simulated seconds** per run (about {c['planned_evaluations']} architectures "
        f"of average cost, {c['seconds_per_arch']:.3f} s each; a run stops after {c['episode_cap_factor']}x that many "
        f"episodes whatever its clock), {c['simulated_workers']} simulated worker(s), "
        f"seeds per agent: {', '.join(map(str, seeds))} (seeds 0 upwards)."
        f" Benchmark file `{f['file']}` sha256 `{f['sha256'][:16]}`"
        + (f", table format {f['format_version']}, trainer version {f['trainer_version']}" if "format_version" in f else "")
        + "." + opt,
        "### Final results at the budget",
        final_table(section),
        "### Anytime: the incumbent's value over simulated time (median [q25, q75] over seeds)",
        anytime_table(section),
        f"![anytime curves]({image})",
    ]
    if lines := notes(section):
        parts += ["### Notes", "\n".join(f"- {line}" for line in lines)]
    parts.append(f"Command: `{section['command']}`.")
    return "\n\n".join(parts)


def page(board: Mapping[str, Any], images: Mapping[str, str]) -> str:
    """The whole page: the protocol, how to compare one's own agent, then every section."""
    head = f"""{TITLE}

Generated by `scripts/make_leaderboard.py` from run folders (`docs/leaderboard.json` holds every
number below, per seed); regenerate it, never edit it by hand.

- **Budget**: every agent runs on the same seeds at the same simulated-time budget, the
  evaluator's recorded training seconds of each architecture (a repeat is a cache hit and free),
  or with simulated parallel workers the moment each result arrives; only the evaluations that
  finished within the budget count.
- **What a run returns**: its best architecture by the validation accuracy it saw (one drawn
  training seed per architecture). Reported: that architecture's **test accuracy** (table mean
  over seeds, never seen by the search) and its **regret** (the optimum's mean validation accuracy
  minus its own). Without a table (surrogate): its noise-free mean validation accuracy as the
  surrogate predicts it (the searches saw one noisy draw per architecture).
- **Anytime**: at each point of a {GRID_POINTS}-point grid up to the budget, the same numbers for the
  architecture the run would return then; median and quartiles over seeds.
- **Tests**: each agent against random search, two-sided Mann-Whitney U on the per-seed final
  values (unpaired), the uncorrected p beside the Holm-corrected one over the agents compared;
  beyond noise when the corrected p is below {ALPHA}.
- **Repeats**: *budget used* is the share of the budget an agent spent with repeats free (an agent
  that keeps re-proposing cached architectures ends at the episode cap with budget left); *repeats
  charged* recomputes the same run charging every query what its first evaluation cost
  (NATS-Bench has no cache), so the run is cut where that clock passes the budget.
- **Multi-fidelity agents** (`sh`, `asha`, `hyperband`, `bohb`, `smac_hb`, on a table with learning curves)
  score many architectures after a few epochs and pay only for the epochs they use; an
  architecture taken further pays only for the epochs it had not paid for. What such a run
  returns is its best result at the highest number of epochs it reached (the full budget once it
  got there), never a few-epoch score; a *repeat* is the same architecture at the same epochs.
  Charging repeats their first cost has no meaning there, so those columns are empty (-).

Compare your own agent (`module:Class` or `file.py:Class`) against this board at its conditions:

```
{COMPARE_YOURS}
```

It runs only your agent, reads the built-in agents' per-seed results from the JSON, and writes
`my-board/leaderboard.md` and `.json` with the same tests; it refuses a board made at another
budget, table file or set of overrides. Runs with config overrides, e.g. `--set
evaluator.simulated_workers=4`, make their own section, named after the override.
"""
    overview = ("## At a glance\n\nThe median over seeds of what each agent's runs return (test accuracy %; on the "
                "surrogate its noise-free mean validation accuracy %), one column per section below. (+) / (-): "
                "better / worse than random search beyond noise (Holm-corrected p < "
                f"{ALPHA}); unmarked: within noise; empty: no row there (each section's notes say why). Where a "
                "table's test accuracies take few distinct values (a small test set), medians can tie; the sections give means "
                "and quartiles.\n\n"
                + glance(board))
    body = [section_text(k, board["sections"][k], images[k]) for k in board["sections"]]
    return head + "\n" + overview + "\n\n" + "\n\n".join(body) + "\n"


def draw(section: Mapping[str, Any], path: Path, title: str) -> Path:
    from nas_gym.runs.anytime import plot_quartiles

    bands = {a: e["anytime"] for a, e in section["agents"].items()}
    nan = {a: {m: {k: [np.nan if v is None else v for v in q[k]] for k in ("q25", "median", "q75")}
               for m, q in by.items()} for a, by in bands.items()}
    return plot_quartiles(nan, section["conditions"]["grid_seconds"], path, title, (primary(section), "regret"))
