"""``nas-gym retrain``: an architecture retrained at full budget, its test accuracy over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nas_gym.cli.common import (
    BAD_INPUT,
    SetOpt,
    TrustOpt,
    bad_input,
    console,
    load_preset,
    out,
)
from nas_gym.runs.report import print_table


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
        cfg = load_preset(config, overrides)
        arch = cfg.search_space().parse(arch_text)
        out_dir = out_dir or Path("runs") / "retrain" / f"{cfg.name}-{arch.key()[:8]}"
        report = run_retrain(cfg, arch, out_dir=out_dir, epochs=epochs, seeds=seeds, export=export, source=source,
                             on_seed=on_seed)
    except (*BAD_INPUT, ValueError) as e:
        raise bad_input(str(e)) from None
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
