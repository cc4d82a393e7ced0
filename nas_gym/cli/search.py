"""``nas-gym search``: run a search, new or resumed, and print its top architectures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nas_gym.cli.common import (
    AGENT_HELP,
    BAD_INPUT,
    EVALUATOR_HELP,
    SetOpt,
    TrustOpt,
    bad_input,
    console,
    load_preset,
    out,
)
from nas_gym.runs.report import print_table


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
        cfg = load_preset(config, overrides, {k: v for k, v in extra.items() if v is not None})
        from nas_gym.preflight import preflight

        preflight(cfg, setup=True)  # a missing dataset, table or cache file fails before a run folder exists
        update, stop = search_progress(console, episodes)
        try:
            summary = run_search(cfg, agent, episodes, seed, logdir, hparams=agent_hparams, on_episode=update,
                                 checkpoint_every=checkpoint_every, resume=resume,
                                 checkpoint_seconds=CHECKPOINT_SECONDS, trust_run=trust_run_folder)
        finally:
            stop()
    except (*BAD_INPUT, ValueError) as e:
        raise bad_input(str(e)) from None
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
