"""Matplotlib figures for TensorBoard and the docs: the Pareto front and a layer diagram.

Imported lazily (matplotlib costs a few tenths of a second to import). Figures are plain
``Figure`` objects drawn by the Agg canvas, never pyplot's: no backend to pick on a headless
machine, no global registry that keeps every figure of a long search alive. Their margins are
fixed (``tight_layout`` measures every label and costs more than drawing the figure), and
:func:`save_figure` lays them out tightly for the docs, where a file is written once.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

_COLOURS = {"conv": "#4c72b0", "res": "#8172b2", "maxpool": "#dd8452", "avgpool": "#e5ae38", "dropout": "#937860"}


def pareto_figure(points: Sequence[tuple[int, float]], front: Sequence[tuple[int, float]], title: str = "") -> Figure:
    """Validation accuracy against parameters for every evaluated architecture, front highlighted."""
    fig = new_figure((6, 4), left=0.12, right=0.97, bottom=0.12, top=0.92)
    ax = fig.subplots()
    if points:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, ys, s=10, alpha=0.4, color="grey", label="evaluated")
    if front:
        fx, fy = zip(*front, strict=True)
        ax.step(fx, fy, where="post", color="#c44e52", marker="o", markersize=4, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if points:  # a search where every architecture failed has nothing to label
        ax.legend(loc="lower right")
    return fig


def architecture_figure(text: str, title: str = "") -> Figure:
    """A left-to-right diagram of an architecture's text form: one coloured box per token (a
    chain's layer, a cell's edge ``op~source``), then the fixed head. Works from the text alone,
    so it draws any space's architectures."""
    tokens = [t for t in text.split("|") if t.strip() and t != "+"]
    labels = tokens + ["GAP + linear"]
    kinds = [re.match(r"[a-z_]*", t)[0] for t in tokens] + ["head"]
    width = max(4.0, 1.3 * len(labels))
    fig = new_figure((width, 1.6), left=0.01, right=0.99, bottom=0.02, top=0.84)
    ax = fig.subplots()
    for i, (label, kind) in enumerate(zip(labels, kinds, strict=True)):
        box = FancyBboxPatch((i * 1.3, 0.2), 1.05, 0.6, boxstyle="round,pad=0.03",
                             facecolor=_COLOURS.get(kind, "#55a868"), edgecolor="black", linewidth=0.8)
        ax.add_patch(box)
        ax.text(i * 1.3 + 0.525, 0.5, label, ha="center", va="center", fontsize=8, color="white", weight="bold")
        if i:
            ax.annotate("", xy=(i * 1.3, 0.5), xytext=(i * 1.3 - 0.25, 0.5), arrowprops={"arrowstyle": "->"})
    ax.set_xlim(-0.1, len(labels) * 1.3)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    return fig


def new_figure(size: tuple[float, float], **margins: float) -> Figure:
    """A figure of ``size`` inches at 100 dpi, on an Agg canvas, with fixed ``margins``
    (``left``, ``right``, ``bottom``, ``top`` as fractions, as ``subplots_adjust`` takes them)."""
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    if margins:
        fig.subplots_adjust(**margins)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Lay out tightly and write ``fig`` as a file (creating the folder)."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # a figure a script made with pyplot stays registered there until closed
        pyplot.close(fig)
    return path
