"""Export what TensorBoard shows for a run as PNG files (the README's images come from this).

Reads the run's event files back (so the images are exactly what TensorBoard displays, not a
re-drawing): the last image of every image tag (Pareto front, best architecture, ...), and one
chart of the main scalar curves.

Usage: ``python scripts/export_tb_images.py RUN_DIR [--out docs/images] [--prefix quickstart]``
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from nas_gym.runs.figures import save_figure  # noqa: E402

CURVES = ("nas/val_acc", "nas/best_val_acc")


def load(run_dir: Path) -> EventAccumulator:
    """The run's own event files (the HParams sub-run and SB3's folder are elsewhere)."""
    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def export_images(acc: EventAccumulator, out: Path, prefix: str) -> list[Path]:
    written = []
    for tag in acc.Tags()["images"]:
        last = acc.Images(tag)[-1]
        path = out / f"{prefix}-{re.sub(r'[^a-z0-9]+', '_', tag.lower()).strip('_')}.png"
        path.write_bytes(last.encoded_image_string)
        written.append(path)
    return written


def export_curves(acc: EventAccumulator, out: Path, prefix: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for tag, style in zip(CURVES, ({"marker": ".", "linestyle": "none", "alpha": 0.5}, {"linewidth": 2}), strict=True):
        events = acc.Scalars(tag)
        ax.plot([e.step for e in events], [e.value for e in events], label=tag, **style)
    ax.set_xlabel("episode")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return save_figure(fig, out / f"{prefix}-curves.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--prefix", default="run")
    args = parser.parse_args()
    if not any(args.run_dir.glob("events.out.tfevents*")):
        parser.error(f"run_dir {args.run_dir}: no TensorBoard event files here; give a folder made by nas-gym search")
    args.out.mkdir(parents=True, exist_ok=True)
    acc = load(args.run_dir)
    for path in [*export_images(acc, args.out, args.prefix), export_curves(acc, args.out, args.prefix)]:
        print(path)


if __name__ == "__main__":
    main()
