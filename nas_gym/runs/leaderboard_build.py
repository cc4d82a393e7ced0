"""Build the agents' leaderboard (docs/leaderboard.md and docs/leaderboard.json) from runs.

For each benchmark (a shipped table, or the surrogate) every agent runs on seeds 0..N-1 at the
same simulated-time budget; the runs live under ``--runs/<benchmark section>/<agent>/``. The script
is incremental: a seed whose finished run (``protocol.json``) is already there is read, not rerun,
so raising ``--seeds`` or adding an agent runs only what is missing. The page and the JSON are
written from the runs alone (``nas_gym.runs.agent_board``, ``nas_gym.runs.board_page``); other
benchmarks' sections of an existing ``leaderboard.json`` in ``--out`` are kept.

Usage::

    python scripts/make_leaderboard.py [--benchmarks mnist1d-tiny,mnist1d-cell] [--agents random,evolution,...]
        [--seeds 50] [--runs runs/leaderboard] [--out docs] [--workers 2] [--set KEY=VALUE ...]
        [--budget-seconds S] [--no-run] [--against docs/leaderboard.json]

``--set evaluator.simulated_workers=4`` passes a config override to every run (its own section
of the board). ``--against BOARD`` takes from a published board the agents these runs lack, at the
same conditions (refused otherwise): how a user's agent is compared without rerunning the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

from nas_gym.errors import NasGymError
from nas_gym.runs.board_absent import absent_agents, answers_at_epochs

BUILTIN = ["random", "evolution", "local", "greedy", "qlearning", "reinforce", "ppo", "maskable_ppo", "dqn", "a2c"]
JSON_NAME, PAGE_NAME = "leaderboard.json", "leaderboard.md"


def parse_set(items: list[str]) -> dict[str, Any]:
    from nas_gym.config import parse_overrides

    return parse_overrides(items)


def command_of(args: argparse.Namespace, bench: str, agents: list[str], seeds: int, budget: float) -> str:
    sets = "".join(f" --set {s}" for s in args.set)
    return (f"python scripts/make_leaderboard.py --benchmarks {bench} --agents {','.join(agents)} --seeds {seeds} "
            f"--budget-seconds {budget:g}{sets}")


def build_section(args: argparse.Namespace, name: str, agents: list[str], against: dict[str, Any] | None
                  ) -> tuple[str, dict[str, Any]]:
    """Run what is missing for one benchmark, then read every finished run into its section."""
    from nas_gym.runs import agent_board as ab
    from nas_gym.runs.compare import CAP_FACTOR, reference_for, run_jobs, simulated_workers

    bench = ab.benchmark(name)
    overrides = parse_set(args.set)
    key = ab.section_key(name, overrides)
    cfg = ab.bench_config(bench, overrides)
    earlier = None if against is None else against["sections"].get(key)
    ref = reference_for(cfg, bench.evaluator)
    per_arch = ab.mean_seconds(cfg, bench, ref)
    budget = args.budget_seconds or ab.default_budget(per_arch, bench.budget_archs)
    planned = max(1, math.ceil(simulated_workers(cfg) * budget / per_arch))  # as compare.planned_evaluations
    space = cfg.search_space()
    conditions = {
        "benchmark": name, "preset": bench.preset, "evaluator": bench.evaluator, "about": bench.about,
        "space_size": len(ref.scores) if ref is not None else space.size(), "budget_seconds": budget, "seconds_per_arch": round(per_arch, 6),
        "planned_evaluations": planned, "episode_cap_factor": CAP_FACTOR, "simulated_workers": simulated_workers(cfg),
        "overrides": {k: overrides[k] for k in sorted(overrides)}, "benchmark_file": ab.identity(cfg, bench),
        "has_test": ref is not None and ref.test is not None, "has_mean": ref is not None or bench.evaluator == "surrogate",
        "optimum_val": None if ref is None else round(ref.optimum, 6),
        "optimum_test": None if ref is None or ref.optimum_test is None else round(ref.optimum_test, 6),
        "grid_seconds": [round(float(t), 6) for t in ab.time_grid(budget)]}
    ab.check_against(conditions, earlier)  # before any run: a comparison at other conditions is refused
    folder = args.runs / key.replace(" ", "_")
    found, other = ab.find_runs(folder, space, budget, conditions["benchmark_file"])
    missing = [(a, s) for a in agents for s in range(args.seeds) if s not in found.get(a, {})]
    if missing and not args.no_run:
        start = time.perf_counter()
        print(f"{key}: {len(missing)} runs to do ({budget:g} simulated s each)", file=sys.stderr, flush=True)
        run_jobs(cfg, missing, folder, planned, budget, evaluator=bench.evaluator, workers=args.workers,
                 on_run=lambda a, s: print(f"  {a} seed {s} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True))
        found, other = ab.find_runs(folder, space, budget, conditions["benchmark_file"])
    if other:
        print(f"{key}: {other} finished runs under {folder} at another budget or on another benchmark file left out", file=sys.stderr)
    runs = {a: {s: r for s, r in by.items() if s < args.seeds} for a, by in found.items()}
    runs = {a: by for a, by in runs.items() if by}
    section: dict[str, Any] = {"conditions": conditions,
                               "agents": ab.section_from_runs(runs, agents, space, ref, budget, planned,
                                                              ab.surrogate_mean(cfg) if bench.evaluator == "surrogate" else None)}
    taken = ab.merge_against(section, earlier)
    shown = [a for a in section["agents"] if a not in taken]
    section["command"] = command_of(args, name, shown, args.seeds, budget)
    if not section["agents"]:
        raise ab.BoardError(f"{key}: no finished run under {folder}; run without --no-run")
    ab.add_tests(section)
    section["absent"] = absent_agents(section["agents"], simulated_workers(cfg), answers_at_epochs(cfg, bench.evaluator))
    return key, section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmarks", default="mnist1d-tiny,mnist1d-cell")
    parser.add_argument("--agents", default=",".join(BUILTIN), help="built-in names, module:Class or file.py:Class")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--runs", type=Path, default=Path("runs/leaderboard"), help="where the run folders go")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where leaderboard.md/.json and images/ go")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel (one torch thread each)")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE for every run")
    parser.add_argument("--budget-seconds", type=float, default=None, help="default: 200 architectures of average cost")
    parser.add_argument("--no-run", action="store_true", help="only read the runs already there")
    parser.add_argument("--against", type=Path, default=None, help="a published leaderboard.json to compare with")
    args = parser.parse_args(argv)
    try:
        return build(args)
    except (NasGymError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def build(args: argparse.Namespace) -> int:
    from nas_gym.runs import board_page

    if args.seeds < 1 or args.workers < 1 or (args.budget_seconds is not None and not args.budget_seconds > 0):
        raise NasGymError(f"need --seeds >= 1, --workers >= 1 and --budget-seconds > 0; got {args.seeds}, "
                          f"{args.workers}, {args.budget_seconds}")
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    benches = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    from nas_gym.agents.base import resolve_agent

    for agent in agents:
        resolve_agent(agent)  # a typo fails before any run
    against = read_board(args.against) if args.against else None
    board = read_board(args.out / JSON_NAME, missing_ok=True)
    for name in benches:
        key, section = build_section(args, name, agents, against)
        board["sections"][key] = section
    board["sections"] = {k: board["sections"][k] for k in sorted(board["sections"])}
    images = {k: f"images/leaderboard-{k.replace(' ', '_').replace('[', '').replace(']', '').replace('=', '-')}.png"
              for k in board["sections"]}
    args.out.mkdir(parents=True, exist_ok=True)
    for key in benches_keys(board, benches):
        board_page.draw(board["sections"][key], args.out / images[key], f"{key}: median and quartiles over seeds")
    (args.out / JSON_NAME).write_text(dump(board))
    (args.out / PAGE_NAME).write_text(board_page.page(board, images))
    print(f"wrote {args.out / PAGE_NAME} and {args.out / JSON_NAME}")
    return 0


def dump(board: dict[str, Any]) -> str:
    """Indented JSON with every list of numbers on one line: readable in a diff, and a board of
    50 seeds stays a few hundred kilobytes instead of one line per number."""
    text = json.dumps(board, indent=1, sort_keys=True)
    return re.sub(r"\[\s+([^\[\]{}\"]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def benches_keys(board: dict[str, Any], benches: list[str]) -> list[str]:
    return [k for k in board["sections"] if k.split(" ")[0] in benches]


def read_board(path: Path, missing_ok: bool = False) -> dict[str, Any]:
    if missing_ok and not path.is_file():
        return {"format": "nas-gym-leaderboard", "version": 1, "sections": {}}
    try:
        board = json.loads(path.read_text())
        if not isinstance(board, dict) or not isinstance(board.get("sections"), dict):
            raise ValueError("no sections")
        return board
    except (OSError, ValueError) as e:
        raise NasGymError(f"{path}: not a leaderboard.json ({type(e).__name__}); give the file make_leaderboard.py "
                          "wrote") from None

