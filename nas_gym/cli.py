"""The ``nas-gym`` command.

Bad input (a config key, an architecture string, an agent name, a dataset root) ends with one
line on stderr and exit code 2, before anything is trained or written to the cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agents.base import BUILTIN_AGENTS
from nas_gym.config import Config, load_config, parse_overrides
from nas_gym.errors import NasGymError
from nas_gym.evaluators import AVAILABLE_KINDS
from nas_gym.runs.report import print_table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Neural architecture search as a Gymnasium environment.")
# No markup: messages carry user text (architectures, paths, preset names), and a "[/x]" in it
# must print as itself, not end a style or crash Rich. Styles are given as Text styles instead.
console = Console(stderr=True, markup=False)
out = Console(markup=False)

ConfigOpt = Annotated[str, typer.Option("--config", "-c", help="Preset name (see envs_config/) or YAML path.")]
AGENT_HELP = f"Agent: {', '.join(BUILTIN_AGENTS)}, or module:Class / file.py:Class."
EVALUATOR_HELP = (f"Evaluator kind: {', '.join(k for k in AVAILABLE_KINDS if not k.startswith('proxy:'))}, "
                  f"proxy:<name> ({', '.join(k.removeprefix('proxy:') for k in AVAILABLE_KINDS if k.startswith('proxy:'))}).")
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config field: KEY=VALUE, e.g. train.epochs=4.")]
TrustOpt = Annotated[bool, typer.Option("--trust-run-folder", help="Use a run folder whose files are unsigned or changed "
                                        "since this user's nas-gym wrote them (another user's, another machine's, or an "
                                        "older nas-gym's). Its config and checkpoint may run code: only for authors you trust.")]


# What a command reports as one line and exit code 2: every error nas-gym raises on purpose, and
# the OS refusing a file. Anything else is a bug and keeps its traceback.
BAD_INPUT = (NasGymError, OSError)


def _fail(message: str) -> typer.Exit:
    """One line on stderr, exit code 2; control characters (an ANSI escape in a path) are shown
    escaped, so user text can neither break the line nor drive the terminal."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(str(message).splitlines()))
    console.print(Text.assemble(("error:", "bold red"), " ", shown), highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _load(config: str, overrides: list[str] | None, extra: dict | None = None) -> Config:
    merged = parse_overrides(overrides or [])
    merged.update(extra or {})
    return load_config(config, merged)


@app.command("eval")
def eval_cmd(
    arch: Annotated[str, typer.Argument(help="Architecture text, e.g. 'conv3-32|maxpool|conv5-64'.")],
    config: ConfigOpt = "mnist1d",
    seed: Annotated[int | None, typer.Option(help="Training seed (default: the preset's train.seed).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    overrides: SetOpt = None,
) -> None:
    """Train one architecture and print its result."""
    try:
        from nas_gym.evaluators import make_evaluator

        cfg = _load(config, overrides, {"train.seed": seed} if seed is not None else None)
        parsed = cfg.search_space().validate(arch)
        evaluator = make_evaluator(cfg)
        result = evaluator.evaluate(parsed)
    except BAD_INPUT as e:
        raise _fail(str(e)) from None
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    table = Table(title=f"{result.arch}  ({cfg.name}, seed {cfg.train.seed})", show_header=False)
    for key, value in result.to_dict().items():
        if key != "arch":
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    table.add_row("cache hit", "yes" if evaluator.stats.cache_hits else "no")
    print_table(out, table)


def _resumed_settings(run_dir: Path | None, agent: str | None, config: str | None, seed: int | None, episodes: int | None,
                      hparams: str | None, trusted: bool = False) -> tuple[str, str, int, int, dict | None]:
    """Agent, config, seed, episodes and hyperparameters of a search: those given on the command
    line, the rest from the run folder being resumed (its manifest and config.yaml), or the
    defaults for a new run. A given one that contradicts the run is refused later, by the check
    every resume goes through (``nas_gym.runs.checkpoint.check_matches``)."""
    if run_dir is None:
        return (agent or "qlearning", config or "mnist1d", 0 if seed is None else seed,
                100 if episodes is None else episodes, _parse_hparams(hparams))
    from nas_gym.runs.checkpoint import read_manifest, verify_run

    run = read_manifest(run_dir)
    if not trusted:  # before its config.yaml or agent, which may name code, is loaded
        verify_run(run_dir)
    return (run.agent if agent is None else agent, str(run_dir / "config.yaml") if config is None else config,
            run.seed if seed is None else seed, run.episodes if episodes is None else episodes,
            run.hparams if hparams is None else _parse_hparams(hparams))


@app.command()
def search(
    agent: Annotated[str | None, typer.Option(help=AGENT_HELP, show_default="qlearning; with --resume the run's")] = None,
    config: Annotated[str | None, typer.Option("--config", "-c", help="Preset name (see envs_config/) or YAML path.",
                                               show_default="mnist1d; with --resume the run's")] = None,
    episodes: Annotated[int | None, typer.Option(help="Episodes (architectures) to run; with --resume, more than the run's extends it.",
                                                 show_default="100; with --resume the run's")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the agent and the env.", show_default="0; with --resume the run's")] = None,
    logdir: Annotated[Path, typer.Option(help="Folder for run folders (TensorBoard, CSV, config).")] = Path("runs"),
    evaluator: Annotated[str | None, typer.Option(help=EVALUATOR_HELP, show_default="the preset's evaluator.kind")] = None,
    hparams: Annotated[str | None, typer.Option(help="Agent hyperparameters as JSON or YAML, e.g. '{lr: 0.01}'.",
                                                show_default="envs_config/agents/<agent>.yaml")] = None,
    workers: Annotated[int | None, typer.Option(help="Architectures evaluated at once.", show_default="the preset's")] = None,
    backend: Annotated[str | None, typer.Option(help="Where evaluations run: serial, process or ray.",
                                                show_default="the preset's")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Address of a running Ray cluster (ray start --head).")] = None,
    overrides: SetOpt = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the stopped run in this run folder, with its own agent, config, seed, episodes and hyperparameters (an option given must agree with the run's).")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Episodes between checkpoints (what --resume continues from).")] = 10,
    trust_run_folder: TrustOpt = False,
) -> None:
    """Run a search and print the top architectures."""
    from nas_gym.runs.report import search_progress
    from nas_gym.runs.search import CHECKPOINT_SECONDS, SearchInterrupted, run_search

    try:
        agent, config, seed, episodes, agent_hparams = _resumed_settings(resume, agent, config, seed, episodes, hparams,
                                                                          trust_run_folder)
        if episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {episodes}")
        if checkpoint_every < 1:
            raise ValueError(f"--checkpoint-every must be >= 1, got {checkpoint_every}")
        extra = {"evaluator.kind": evaluator, "evaluator.workers": workers, "evaluator.backend": backend,
                 "evaluator.ray_address": ray_address}
        cfg = _load(config, overrides, {k: v for k, v in extra.items() if v is not None})
        from nas_gym.evaluators.training import check_setup

        check_setup(cfg)  # a missing dataset or a foreign cache file fails before a run folder exists
        update, stop = search_progress(console, episodes)
        try:
            summary = run_search(cfg, agent, episodes, seed, logdir, hparams=agent_hparams, on_episode=update,
                                 checkpoint_every=checkpoint_every, resume=resume,
                                 checkpoint_seconds=CHECKPOINT_SECONDS, trust_run=trust_run_folder)
        finally:
            stop()
    except (*BAD_INPUT, ValueError) as e:
        raise _fail(str(e)) from None
    except SearchInterrupted as e:
        console.print(f"interrupted; {e.episodes_done} episodes are checkpointed. Resume with: nas-gym search "
                      f"--resume {e.run_dir}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    if summary.already_finished:
        out.print(f"Run {summary.run_dir} already finished its {summary.episodes} episodes; nothing to resume "
                  "(give a larger --episodes to extend it).", soft_wrap=True, highlight=False)
    elif summary.resumed_from:
        out.print(f"Resumed after episode {summary.resumed_from}.", highlight=False)
    _print_summary(summary, cfg.reward.cost)


@app.command()
def compare(
    agents: Annotated[str, typer.Option(help="Comma-separated agents, e.g. random,evolution,qlearning,maskable_ppo.")] = "random,evolution,qlearning",
    config: ConfigOpt = "mnist1d-tiny",
    budget: Annotated[int | None, typer.Option(help="Evaluations per run (cache hits count); default 100. With "
                                               "--budget-seconds: the evaluations agents plan their schedules for "
                                               "(default: the seconds over the table's mean seconds per architecture).")] = None,
    budget_seconds: Annotated[float | None, typer.Option(help="Stop every run once its simulated training seconds "
                                                         "(the evaluator's clock) pass this, as NATS-Bench compares.")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds per agent (0..K-1).")] = 5,
    logdir: Annotated[Path, typer.Option(help="Folder for the runs, comparison.csv and comparison.png.")] = Path("runs/compare"),
    evaluator: Annotated[str | None, typer.Option(help=EVALUATOR_HELP, show_default="the preset's evaluator.kind")] = None,
    workers: Annotated[int, typer.Option(help="Runs in parallel (spawned processes, one torch thread each); "
                                         "the results do not depend on it.")] = 1,
    overrides: SetOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier comparison in --logdir (comparison.csv and "
                                            "its PNG); without it such a folder is refused.")] = False,
) -> None:
    """Run several agents on the same budget and seeds; per run: the architecture it returns, its test
    accuracy (table), regret, evaluations to the top 1%, simulated seconds; a CSV and a PNG."""
    from nas_gym.runs.anytime import plot_curves, time_grid, write_curves_csv
    from nas_gym.runs.compare import CSV_NAME, PNG_NAME, check_free, run_comparison
    from nas_gym.runs.compare_table import TESTS_CSV, agent_curves, holm_rows, plot, table_rows, write_holm_csv

    names = [a.strip() for a in agents.split(",") if a.strip()]
    try:
        if (budget is not None and budget < 1) or seeds < 1 or not names:
            raise ValueError(f"need --budget >= 1, --seeds >= 1 and at least one agent; got {budget}, {seeds}, {agents!r}")
        if budget_seconds is not None and not budget_seconds > 0:
            raise ValueError(f"--budget-seconds must be > 0, got {budget_seconds}")
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        from agents.base import resolve_agent

        for name in names:
            resolve_agent(name)  # fail on a typo before any run starts
        check_free(logdir, overwrite)
        cfg = _load(config, overrides, {"evaluator.kind": evaluator} if evaluator else None)
        from nas_gym.evaluators.training import check_setup

        check_setup(cfg)  # a missing dataset or a foreign cache file fails before any folder exists
        progress = Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}", markup=False),
                            TimeElapsedColumn(), console=console)
        task = progress.add_task("", total=len(names) * seeds)

        def on_run(agent: str, seed: int) -> None:  # the bar appears with the first finished run, after every check
            if not progress.live.is_started:
                progress.start()
            progress.update(task, advance=1, description=f"{agent} seed {seed}")

        try:
            summaries, ref = run_comparison(
                cfg, names, budget, seeds, logdir, evaluator=evaluator, budget_seconds=budget_seconds, workers=workers,
                overwrite=overwrite, on_run=on_run)
        finally:
            if progress.live.is_started:
                progress.stop()
    except (*BAD_INPUT, ValueError) as e:
        raise _fail(str(e)) from None
    planned = summaries[0].budget
    spent = f"{budget_seconds:g} simulated seconds (planned {planned} evaluations)" if budget_seconds else f"{planned} evaluations"
    png = plot(summaries, logdir / PNG_NAME, ref.optimum if ref else None, f"{cfg.name}: {seeds} seeds, {spent}")
    rows = table_rows(summaries)
    table = Table(title=f"{cfg.name}, budget {spent}, {seeds} seeds (mean ± std over seeds)")
    for col in rows[0]:  # agent names whole; the numbers wrap on a narrow terminal
        table.add_column(col, justify="left" if col == "agent" else "right", no_wrap=col == "agent")
    for row in rows:
        table.add_row(*row.values())
    print_table(out, table)
    if ref is None:
        out.print(f"Evaluator {cfg.evaluator.kind!r} has no table: test accuracy, regret and top-1% columns are empty.",
                  highlight=False, soft_wrap=True)
    else:
        tests = "" if ref.optimum_test is None else f", its test accuracy {ref.optimum_test:.4f}"
        out.print(f"Optimum of the space (mean val acc): {ref.optimum:.4f}{tests}; top 1% from {ref.threshold:.4f}. "
                  "Regret = optimum - mean val acc of the returned architecture.", highlight=False, soft_wrap=True)
    # Anytime curves over simulated time on one grid up to the budget (or the longest run's clock).
    horizon = budget_seconds or max((run.clock[-1] for s in summaries for run in s.runs if run.clock), default=0.0)
    extra = ""
    if horizon > 0:
        grid = time_grid(horizon)
        curves = agent_curves(summaries, cfg.search_space(), ref, grid)
        write_curves_csv(logdir / "anytime.csv", curves, grid)
        plot_curves(curves, grid, logdir / "anytime.png", f"{cfg.name}: median and quartiles over {seeds} seeds")
        extra = f"\nAnytime curves (median, quartiles over seeds): {logdir / 'anytime.csv'}, {logdir / 'anytime.png'}"
    if "random" in names and len(names) > 1:
        write_holm_csv(logdir / TESTS_CSV, holm_rows(summaries, "test_acc" if ref is not None and ref.test else "val_acc"))
        extra += f"\nAgainst random search (Mann-Whitney U, uncorrected and Holm-corrected): {logdir / TESTS_CSV}"
    out.print(f"Figure: {png}\nPer run: {logdir / CSV_NAME}{extra}", soft_wrap=True, highlight=False)


@app.command()
def leaderboard(
    runs: Annotated[list[Path], typer.Argument(help="Run folders, or folders holding run folders.")],
    top: Annotated[int, typer.Option(help="How many architectures to show.")] = 10,
    pareto: Annotated[bool, typer.Option(help="Show only the accuracy / parameters Pareto front.")] = False,
    preset: Annotated[str | None, typer.Option(help="Only runs of this preset (config.yaml's name).", show_default="all")] = None,
    evaluator: Annotated[str | None, typer.Option(help="Only runs scored by this evaluator kind (table, train, ...).",
                                                  show_default="all")] = None,
) -> None:
    """The best architectures of one or several runs, by the reward they optimised; failures listed apart."""
    from nas_gym.runs.leaderboard import LeaderboardError, RunInfo, pareto_front, read_entries, select_runs
    from nas_gym.runs.report import leaderboard_table

    try:
        if top < 1:
            raise ValueError(f"--top must be >= 1, got {top}")
        entries, failures = read_entries(runs, preset, evaluator)
        kinds = {(i.preset, i.evaluator, i.reward) for i in (RunInfo.of(p.parent) for p in select_runs(runs, preset, evaluator))}
    except (LeaderboardError, ValueError, OSError) as e:
        raise _fail(str(e)) from None
    shown = pareto_front(entries) if pareto else entries[:top]
    print_table(out, leaderboard_table(shown, entries, pareto))
    if len(kinds) > 1:
        out.print(f"Note: these runs differ in preset, evaluator or reward ({'; '.join('/'.join(k) for k in sorted(kinds))}), "
                  "so their scores are not on one scale; narrow with --preset and --evaluator.", highlight=False, soft_wrap=True)
    if failures:
        fail = Table(title=f"{len(failures)} failed architectures")
        for col in ("architecture", "reason", "evaluations"):
            fail.add_column(col, overflow="fold")
        for e in failures:
            fail.add_row(e.arch, e.reason, str(e.evaluations))
        print_table(out, fail)


@app.command("retrain")
def retrain_cmd(
    target: Annotated[str, typer.Argument(metavar="ARCH|RUN_DIR", help="Architecture text, or a run folder whose best architecture is retrained.")],
    config: Annotated[str | None, typer.Option("--config", "-c", help="Preset name or YAML path (default: the run folder's config.yaml, else mnist1d).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: max(4 x the preset's epochs, 20)).")] = None,
    seeds: Annotated[int, typer.Option(help="Seeds 0..K-1; test accuracy is reported as mean and std over them.")] = 3,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the models and retrain.json (default: runs/retrain/PRESET-KEY).")] = None,
    export: Annotated[str | None, typer.Option(help="Also export every model: torchscript or onnx.")] = None,
    overrides: SetOpt = None,
    trust_run_folder: TrustOpt = False,
) -> None:
    """Retrain an architecture on train+validation at full budget; report test accuracy over seeds, save the models."""
    from nas_gym.runs.retrain import check_export, resolve_target
    from nas_gym.runs.retrain import retrain as run_retrain

    def on_seed(r) -> None:
        acc = "-" if r.test_acc is None else f"{r.test_acc:.4f}"
        console.print(f"seed {r.seed}: {r.status}, test acc {acc} ({r.seconds:.1f} s)", highlight=False)

    try:
        if seeds < 1 or (epochs is not None and epochs < 1):
            raise ValueError(f"need --seeds >= 1 and --epochs >= 1, got {seeds} and {epochs}")
        check_export(export)
        arch_text, source = resolve_target(target)
        if config is None and source is not None and (source / "config.yaml").is_file():
            if not trust_run_folder:  # the folder's config may name code: only a signed one is read
                from nas_gym.runs.checkpoint import verify_run

                verify_run(source, label="retrain")
            config = str(source / "config.yaml")
        config = config or "mnist1d"
        cfg = _load(config, overrides)
        arch = cfg.search_space().parse(arch_text)
        out_dir = out_dir or Path("runs") / "retrain" / f"{cfg.name}-{arch.key()[:8]}"
        report = run_retrain(cfg, arch, out_dir=out_dir, epochs=epochs, seeds=seeds, export=export, source=source,
                             on_seed=on_seed)
    except (*BAD_INPUT, ValueError) as e:
        raise _fail(str(e)) from None
    table = Table(title=f"{report.arch}  ({report.preset}, {report.epochs} epochs on train+validation, "
                        f"{report.train_size:,} samples)")
    for col in ("seed", "status", "test acc", "train loss", "seconds", "model"):
        table.add_column(col, justify="left" if col in ("status", "model") else "right",
                         overflow="fold" if col == "model" else "ellipsis")
    for r in report.seeds:
        table.add_row(str(r.seed), r.status if r.ok else f"{r.status}: {r.reason}",
                      "-" if r.test_acc is None else f"{r.test_acc:.4f}", f"{r.train_loss:.4f}", f"{r.seconds:.1f}",
                      str(r.model_path or "-"))
    print_table(out, table)
    mean, std = report.test_acc_mean, report.test_acc_std
    summary = "no seed trained" if mean is None else f"{mean:.4f}" + ("" if std is None else f" +- {std:.4f}")
    out.print(f"Test accuracy ({report.test_size:,} test samples, {len(report.test_accs)} of {len(report.seeds)} seeds, "
              f"mean +- sample std): {summary}", highlight=False, soft_wrap=True)
    out.print(f"Report: {report.out_dir / 'retrain.json'}", soft_wrap=True, highlight=False)


def _parse_hparams(text: str | None) -> dict | None:
    import yaml

    if not text:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(f"--hparams {text!r}: expected a mapping, e.g. '{{learning_rate: 0.01}}'")
    return value


def _print_summary(summary, cost_name: str) -> None:
    from nas_gym.runs.report import top_table

    print_table(out, top_table(summary.top, cost_name))
    s = summary.stats
    out.print(f"{summary.episodes} episodes, {s.evaluations} evaluations ({s.cache_hits} cache hits, "
              f"{s.failures} failures) in {summary.seconds:.1f} s", highlight=False, soft_wrap=True)
    if (summary.run_dir / "confirmed.csv").is_file():
        out.print(f"Multi-fidelity: the leaderboard ranks by the longest training seen: nas-gym leaderboard {summary.run_dir}",
                  soft_wrap=True, highlight=False)
    out.print(f"Run folder: {summary.run_dir}", soft_wrap=True, highlight=False)
    out.print(f"TensorBoard: tensorboard --logdir {summary.run_dir.parent}", soft_wrap=True, highlight=False)


latency_app = typer.Typer(no_args_is_help=True, help="A latency model of this machine (reward.cost: latency_model).")
app.add_typer(latency_app, name="latency")


@latency_app.command("profile")
def latency_profile(
    config: ConfigOpt = "mnist1d",
    out_file: Annotated[Path | None, typer.Option("--out", help="Table file (default: the preset's reward.latency_table, "
                                                  "or ~/.cache/nas-gym/latency/<preset hash>.json).")] = None,
    repeats: Annotated[int, typer.Option(help="Timed runs of each layer and fitted network; the median is kept.")] = 100,
    fit_archs: Annotated[int, typer.Option(help="Whole networks the constant (intercept and scale) is fitted on.")] = 30,
    overrides: SetOpt = None,
) -> None:
    """Time every layer the preset's space can produce here (batch 1, one thread): the table latency_model sums."""
    try:
        from nas_gym.latency.model import default_table_path, preset_identity
        from nas_gym.latency.profile import profile

        if repeats < 1 or fit_archs < 1:
            raise ValueError(f"need --repeats >= 1 and --fit-archs >= 1, got {repeats} and {fit_archs}")
        # This builds the table a latency_model cost reads, so the preset's own cost is not checked here.
        cfg = _load(config, overrides, {"reward.cost": "params"})
        path = out_file or (Path(cfg.reward.latency_table) if cfg.reward.latency_table != "auto" else
                            default_table_path(preset_identity(cfg.space, cfg.input_shape, cfg.num_classes)))
        progress = Progress(TextColumn("[bold]latency profile"), BarColumn(), MofNCompleteColumn(), TextColumn("rounds"),
                            TimeElapsedColumn(), console=console)
        task = progress.add_task("", total=None)

        def on_step(done: int, total: int) -> None:  # the bar appears once timing starts, after every check
            if not progress.live.is_started:
                progress.start()
            progress.update(task, completed=done, total=total)

        try:
            table = profile(cfg, repeats=repeats, fit_archs=fit_archs, on_step=on_step)
        finally:
            if progress.live.is_started:
                progress.stop()
        table.save(path)
    except (*BAD_INPUT, ValueError) as e:
        raise _fail(str(e)) from None
    fit_error = sorted(abs(r) / m for r, m in zip(table.fit["residual_ms"], table.fit["measured_ms"], strict=True))
    out.print(f"{len(table.entries)} layers of {cfg.name} timed on {table.cpu} ({table.device}, torch {table.torch}, "
              f"{table.threads} thread) in {table.profile_seconds:.1f} s; fitted on {len(fit_error)} networks: "
              f"{table.scale:.3f} x sum + {table.intercept_ms * 1e3:.1f} us, median error "
              f"{100 * fit_error[len(fit_error) // 2]:.1f}%", highlight=False, soft_wrap=True)
    out.print(f"Table: {path}\nUse it with: --set reward.cost=latency_model"
              + ("" if out_file is None else f" --set reward.latency_table={path}"), highlight=False, soft_wrap=True)


def main() -> None:  # pragma: no cover - console-script shim
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
