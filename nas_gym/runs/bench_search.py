"""Search agents on a table at equal simulated training time: NATS-Bench's protocol.

Every built-in agent searches the preset's table over the same seeds until its simulated clock
(the table's recorded training seconds of each distinct architecture it evaluated) passes the same
budget; each run hands back its best architecture by validation accuracy as it saw it (one
training seed drawn per architecture, as NAS-Bench-201's simulations draw), and we report that
architecture's *test* accuracy (mean over the table's seeds, never seen by the search) as mean ±
std over seeds, beside the table's optimum and NAS-Bench-201's published CIFAR-10 numbers (Dong &
Yang, ICLR 2020). Differences between agents are tested with a two-sided Mann-Whitney U test,
Holm-corrected over each family of comparisons (every agent against random search; the three
pairs of the NAS-Bench-201 ordering), the uncorrected p-value shown beside the corrected one.

Writes (replacing only this preset's section of the page, so several tables share it):

* ``docs/bench_search.md``: the protocol, then per preset the table, the ordering check and notes;
* ``docs/images/bench_search-<preset>.png``: test accuracy of the returned architecture per agent;
* ``docs/bench_search-<preset>.json``: that test accuracy per agent and seed, from which every
  p-value on the page can be recomputed.

Usage: ``python scripts/bench_search.py [--config mnist1d-tiny] [--seeds 50] [--budget-seconds S]
[--agents random,evolution,...] [--logdir DIR | --runs DIR] [--out docs]``. ``--runs`` reads the
finished runs of a folder of per-agent run folders at this budget (the agents' leaderboard keeps
its runs so, under ``<runs>/<benchmark>/``) and runs only the (agent, seed) pairs missing there:
the page and the leaderboard then report the very same runs, paid for once. The default budget is the time of
``BUDGET_ARCHS`` architectures of average cost: about 17% of the 1,174 layer chains of
``mnist1d-tiny``, 4.0% of the 5,044 distinct cells of ``mnist1d-cell``; in both, random search's expected
evaluations to the top 1% (100) fit in it with room for an agent that needs fewer to show it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nas_gym.config import Config, load_config, parse_overrides
from nas_gym.runs.compare import (
    CAP_FACTOR,
    AgentSummary,
    Reference,
    benchmark_file,
    planned_evaluations,
    run_comparison,
    run_jobs,
    simulated_workers,
)
from nas_gym.runs.compare_table import table_rows
from nas_gym.runs.stats import ALPHA, against, fmt_p, holm
from nas_gym.runs.stats import mann_whitney as mwu

BUILTIN = ["random", "evolution", "qlearning", "reinforce", "ppo", "maskable_ppo", "dqn", "a2c"]
DEFAULT_AGENTS = [*BUILTIN, "greedy"]
BUDGET_ARCHS = 200  # default budget: this many architectures of the table's mean training seconds
# NAS-Bench-201 (Dong & Yang, ICLR 2020), CIFAR-10 test accuracy (%) of the architecture each
# method returns, mean ± std over its runs; the optimum is the space's best.
PUBLISHED = {"evolution": ("REA", 93.92, 0.30), "reinforce": ("REINFORCE", 93.85, 0.37), "random": ("RS", 93.70, 0.36)}
PUBLISHED_OPTIMUM = 94.37
PAGE_TITLE = "# Search agents at equal simulated training time (NATS-Bench's protocol)"
PROTOCOL = f"""{PAGE_TITLE}

`scripts/bench_search.py` runs every built-in agent on a shipped table over the same seeds, at the
same simulated-time budget, as NAS-Bench-201 and NATS-Bench compare search methods:

- **Rewards**: the table evaluator draws one of the table's training seeds per architecture
  (seeded by the run's seed), so a search sees single-run noise, as NAS-Bench-201's simulations do.
- **Budget**: each run's simulated clock is charged the table's recorded training seconds of every
  *distinct* architecture it evaluates (a repeat is a cache hit and free; NATS-Bench has no cache and
  charges every query). A run stops once the clock passes the budget, and only the evaluations that
  finished within it count. Agents plan for the number of architectures of average cost that fit
  (Q-learning's epsilon and DQN's exploration schedules are scaled to it); a run that keeps
  re-proposing cached architectures is stopped after {CAP_FACTOR}x that many episodes and counts as
  stopped by the evaluation cap.
- **What a run returns**: its best architecture by validation accuracy as it saw it (a lucky seed
  draw can win, as in a real search). We report that architecture's **test accuracy** (mean over the
  table's seeds, never shown to the search), as NAS-Bench-201 does.
- **Regret**: the table optimum's mean validation accuracy minus the returned architecture's (never
  negative; 0 when the run returned the optimum). Top 1%: by mean validation accuracy.
- **Noise**: mean ± sample std over seeds, and a two-sided Mann-Whitney U test (scipy; unpaired,
  on the per-seed final test accuracies) between agents, Holm-corrected over each family of comparisons (every agent against
  random search; the three pairs of the NAS-Bench-201 ordering). A difference is beyond noise
  when its corrected p is below {ALPHA}; the uncorrected p is shown beside it.

NAS-Bench-201's published CIFAR-10 test accuracies (Dong & Yang, ICLR 2020) are shown beside ours
for the ordering only: their space, data and training budget differ from ours. The anytime curves
(each agent's incumbent over simulated time) and the results with every repeat charged are on the
agents' leaderboard, `docs/leaderboard.md`, written by `scripts/make_leaderboard.py`; with `--runs
runs/leaderboard/<benchmark>` this page reads that board's finished runs at the same budget and runs
only the ones missing, so both report the same runs.
"""


def tests_of(summaries: list[AgentSummary]) -> dict[str, list[float]]:
    """Per agent, the test accuracy (%) of the returned architecture, one per seed."""
    return {s.agent: [100 * v for v in s.column("test_acc") if v is not None] for s in summaries}


def pct(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.2f}"


def markdown(rows: list[list[str]], header: list[str]) -> str:
    """A GitHub table: the first column left-aligned, the rest right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def results_table(summaries: list[AgentSummary], tests: dict[str, list[float]]) -> str:
    printed = {r["agent"]: r for r in table_rows(summaries)}
    vs_random = against("random", tests) if "random" in tests else {}
    rows = []
    for s in summaries:
        p = printed[s.agent]
        name, mean, std = PUBLISHED.get(s.agent, ("", None, None))
        seconds = sum(r["stopped_by"] == "seconds" for r in s.rows)
        rows.append([s.agent, pct(tests[s.agent]), f"{name} {mean:.2f} ± {std:.2f}" if name else "",
                     pct([100 * v for v in s.column("regret") if v is not None]), p["evals to top 1%"], p["distinct to top 1%"],
                     f"{np.mean(s.column('distinct_archs')):.0f}", p["train s"], f"{seconds}/{len(s.rows)}",
                     " / ".join(fmt_p(p) for p in vs_random[s.agent]) if s.agent in vs_random else ""])
    header = ["agent", "test acc % of pick", "NAS-Bench-201 CIFAR-10", "regret (val points)", "evals to top 1% (median)",
              "distinct to top 1% (median)", "distinct archs", "simulated s", "stopped by seconds",
              "p vs random (MWU / Holm)"]
    return markdown(rows, header)


def ordering(tests: dict[str, list[float]]) -> list[str]:
    """Our order of the three agents NAS-Bench-201 reports, against theirs, pair by pair."""
    names = [a for a in PUBLISHED if a in tests and tests[a]]
    if len(names) < 2:
        return []
    ours = sorted(names, key=lambda a: -np.mean(tests[a]))
    theirs = sorted(names, key=lambda a: -PUBLISHED[a][1])
    label = {a: PUBLISHED[a][0] for a in names}
    out = [f"NAS-Bench-201's order: {' > '.join(label[a] for a in theirs)}; ours (mean test accuracy): "
           f"{' > '.join(label[a] for a in ours)}: {'the same order' if ours == theirs else 'a different order'}."]
    pairs = [(a, b) for i, a in enumerate(theirs) for b in theirs[i + 1:]]
    raw = {f"{a}|{b}": mwu(tests[a], tests[b]) for a, b in pairs}
    corrected = holm(raw)
    for a, b in pairs:
        diff = np.mean(tests[a]) - np.mean(tests[b])
        p, q = raw[f"{a}|{b}"], corrected[f"{a}|{b}"]
        verdict = "within noise" if q >= ALPHA else ("agrees" if diff > 0 else "reversed")
        out.append(f"{label[a]} - {label[b]}: {diff:+.2f} points here (published {PUBLISHED[a][1] - PUBLISHED[b][1]:+.2f}); "
                   f"Mann-Whitney p {fmt_p(p)}, Holm-corrected over these {len(pairs)} pairs {fmt_p(q)}: {verdict}.")
    return out


def notes(summaries: list[AgentSummary], tests: dict[str, list[float]], ref: Reference, seconds: float) -> list[str]:
    """Plain statements read off the numbers, so they stay true when the script is rerun."""
    out = []
    means = {a: float(np.mean(v)) for a, v in tests.items() if v}
    best = max(means, key=means.get)
    out.append(f"Highest mean test accuracy: {best} ({means[best]:.2f}%), {100 * ref.optimum_test - means[best]:.2f} "
               f"points below the test accuracy of the optimum by mean validation ({100 * ref.optimum_test:.2f}%).")
    if "random" in tests:
        vs = against("random", tests)
        better = [a for a in vs if means[a] > means["random"] and vs[a][1] < ALPHA]
        worse = [a for a in vs if means[a] < means["random"] and vs[a][1] < ALPHA]
        same = [a for a in vs if a not in (*better, *worse)]
        lucky = [a for a in same if vs[a][0] < ALPHA]
        out.append(f"Better than random search beyond noise (Holm-corrected p < {ALPHA} over the {len(vs)} comparisons "
                   f"with random): {', '.join(better) or 'none'}; worse: {', '.join(worse) or 'none'}; within noise of "
                   f"it: {', '.join(same) or 'none'}"
                   + (f" ({', '.join(lucky)} uncorrected p < {ALPHA}, which the correction does not confirm)." if lucky else "."))
    capped = [f"{s.agent} ({sum(r['stopped_by'] == 'evaluations' for r in s.rows)}/{len(s.rows)}, "
              f"{100 * np.mean(s.column('train_seconds')) / seconds:.0f}% of the budget spent on average; with every "
              f"repeat charged, test accuracy {pct([100 * v for v in s.column('test_acc_charged') if v is not None])})"
              for s in summaries if any(r["stopped_by"] == "evaluations" for r in s.rows)]
    if capped:
        out.append(f"Runs stopped by the evaluation cap before the clock ran out (they kept re-proposing cached "
                   f"architectures, which cost nothing; NATS-Bench has no cache and charges every query, so the "
                   f"same runs are also cut where that clock passes the budget): {', '.join(capped)}.")
    return out


def plot(tests: dict[str, list[float]], ref: Reference, path: Path, title: str) -> None:
    """Box plot of the returned architecture's test accuracy per agent, the optimum's dashed."""
    from nas_gym.runs.figures import new_figure, save_figure

    fig = new_figure((9, 4.5))
    ax = fig.subplots()
    names = list(tests)
    ax.boxplot([tests[a] for a in names], showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=20)
    ax.axhline(100 * ref.optimum_test, color="black", linestyle="--", linewidth=1,
               label="optimum by mean validation accuracy")
    ax.axhline(100 * ref.best_test, color="grey", linestyle=":", linewidth=1, label="best test accuracy in the table")
    ax.set_ylabel("test accuracy (%) of the returned architecture")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def section(preset: str, body: str) -> str:
    return f"<!-- bench_search:{preset} -->\n{body}\n<!-- /bench_search:{preset} -->"


def write_page(path: Path, preset: str, body: str) -> None:
    """The protocol, then every preset's section: this preset's replaced, the others kept."""
    old = path.read_text() if path.is_file() else ""
    kept = re.findall(r"<!-- bench_search:([\w.-]+) -->\n(.*?)\n<!-- /bench_search:\1 -->", old, flags=re.S)
    sections = dict(kept) | {preset: body}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PROTOCOL + "\n" + "\n\n".join(section(p, b) for p, b in sections.items()) + "\n")


def wall_note(minutes: float, reused: int, total: int) -> str:
    """How long the runs took, or that none was made here (all read from ``--runs``)."""
    read = (f"{reused} of the {total} runs were finished runs read from the folder given to `--runs` (made by the "
            "same command or the leaderboard's, at the same budget).")
    if reused == total:
        return "no run was made here: " + read
    return f"{minutes:.0f} minutes wall time" + (f" for the runs made here; {read}" if reused else ".")


def render(out: Path, preset: str, summaries: list[AgentSummary], ref: Reference, seconds: float, seeds: int,
           minutes: float, workers: int = 1, reused: int = 0) -> str:
    """Draw the figure and write this preset's section of the page; returns the section."""
    tests = tests_of(summaries)
    image = out / "images" / f"bench_search-{preset}.png"
    plot(tests, ref, image, f"{preset}: {seeds} seeds, {seconds:g} simulated s")
    command = (f"python scripts/bench_search.py --config {preset} --seeds {seeds} "
               f"--budget-seconds {seconds:g} --agents {','.join(s.agent for s in summaries)}"
               + (f" --workers {workers}" if workers > 1 else ""))
    body = "\n\n".join([
        f"## {preset}",
        f"{len(ref.scores):,} architectures; mean training {ref.mean_seconds:.3f} s each (simulated clock); optimum by "
        f"mean validation accuracy {100 * ref.optimum:.2f}%, its test accuracy **{100 * ref.optimum_test:.2f}%** (best "
        f"test accuracy in the table {100 * ref.best_test:.2f}%); top 1% from mean validation {100 * ref.threshold:.2f}%. "
        f"Budget {seconds:g} simulated seconds per run (about {summaries[0].budget} architectures of average cost), "
        f"{seeds} seeds per agent (0..{seeds - 1}).",
        results_table(summaries, tests),
        "Evaluations to the top 1% are medians over seeds (a seed that never got there counts as infinite: "
        "`> budget`), with the seeds that got there in brackets. NAS-Bench-201's optimum: "
        f"{PUBLISHED_OPTIMUM:.2f}%.",
        f"![test accuracy of the returned architecture per agent](images/{image.name})",
        "### Ordering against NAS-Bench-201", "\n".join(f"- {line}" for line in ordering(tests)),
        "### Notes", "\n".join(f"- {line}" for line in notes(summaries, tests, ref, seconds)),
        f"Command: `{command}`. Conditions: {os.cpu_count()}-core CPU shared with other jobs, no GPU, agents on one "
        "torch thread; " + wall_note(minutes, reused, seeds * len(summaries)),
    ])
    write_page(out / "bench_search.md", preset, body)
    raw = {"preset": preset, "seeds": seeds, "budget_seconds": seconds, "command": command,
           "test_acc_percent": {agent: values for agent, values in tests.items()}}
    (out / f"bench_search-{preset}.json").write_text(json.dumps(raw, indent=1) + "\n")  # to recompute the tests
    return body


def reuse_runs(cfg: Config, agents: list[str], seeds: int, folder: Path, seconds: float, ref: Reference,
               workers: int, on_run: Callable[[str, int], None]) -> tuple[list[AgentSummary], int]:
    """Each agent's seeds ``0..seeds-1``: the finished runs under ``folder`` at ``seconds`` (found
    as the leaderboard finds them), and new runs into ``folder/<agent>/`` for the pairs missing.
    A run is fixed by its config, agent, seed and budget, so a reused run is the run this script
    would have made. Returns the summaries and how many runs were reused."""
    from nas_gym.runs.agent_board import find_runs

    space, scored_by = cfg.search_space(), benchmark_file(cfg, "table")
    planned = planned_evaluations(None, seconds, ref, simulated_workers(cfg))
    found, _ = find_runs(folder, space, seconds, scored_by)
    missing = [(a, s) for a in agents for s in range(seeds) if s not in found.get(a, {})]
    print(f"{folder}: {sum(len(v) for v in found.values())} finished runs found, {len(missing)} to do", file=sys.stderr)
    if missing:
        run_jobs(cfg, missing, folder, planned, seconds, evaluator="table", workers=workers, on_run=on_run)
        found, _ = find_runs(folder, space, seconds, scored_by)
    summaries = []
    for agent in agents:
        runs = tuple(found[agent][s] for s in range(seeds))
        summaries.append(AgentSummary(agent, runs, tuple(r.row(space, ref) for r in runs), planned))
    return summaries, len(agents) * seeds - len(missing)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="mnist1d-tiny", help="a preset with a shipped table")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--budget-seconds", type=float, default=None,
                        help=f"simulated training seconds per run (default: {BUDGET_ARCHS} x the table's mean seconds)")
    parser.add_argument("--agents", default=",".join(DEFAULT_AGENTS))
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--logdir", type=Path, default=None, help="keep the run folders here (default: a temp dir)")
    runs.add_argument("--runs", type=Path, default=None, help="use the finished runs at this budget under DIR/<agent>/ "
                      "(e.g. the leaderboard's runs/leaderboard/<benchmark>) and add only the missing ones")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel (one torch thread each)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where bench_search.md and images/ go")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE for every run, e.g. "
                        "evaluator.simulated_workers=4")
    args = parser.parse_args(argv)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    cfg = load_config(args.config, {**parse_overrides(args.set), "evaluator.kind": "table"})

    from nas_gym.runs.compare import reference_for

    ref = reference_for(cfg, "table")
    assert ref is not None and ref.mean_seconds is not None and ref.optimum_test is not None
    seconds = args.budget_seconds or round(BUDGET_ARCHS * ref.mean_seconds, 1)
    start = time.perf_counter()

    def on_run(agent: str, seed: int) -> None:
        print(f"{agent} seed {seed} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    if args.runs is not None:
        summaries, reused = reuse_runs(cfg, agents, args.seeds, args.runs, seconds, ref, args.workers, on_run)
    else:
        reused = 0
        with tempfile.TemporaryDirectory(prefix="bench_search-") as tmp:
            summaries, _ = run_comparison(cfg, agents, None, args.seeds, args.logdir or Path(tmp), evaluator="table",
                                          budget_seconds=seconds, workers=args.workers, on_run=on_run)
    body = render(args.out, args.config, summaries, ref, seconds, args.seeds, (time.perf_counter() - start) / 60,
                  args.workers, reused)
    print(body)

