"""The pilot's page: seed agreement, fidelity and cost per setting and epoch (see pilot_cell_budget.py).

Definitions used on the page:

* seed-to-seed tau: Kendall tau between two seeds' validation accuracies over the uniform cells,
  the mean over the three pairs of seeds;
* top-10% tau: the 10% best of all pilot cells chosen by seed 0's last-epoch validation accuracy,
  then the tau between seeds 1 and 2 over them alone (choosing and measuring on different seeds
  keeps the choice's luck out of the measurement);
* epoch vs last: Kendall tau between the seed-mean validation accuracy at this epoch and at the
  setting's last epoch, over the uniform cells;
* within / between: the median over uniform cells of the standard deviation across seeds, and the
  standard deviation across uniform cells of the seed mean, in accuracy points;
* CPU-s: a member's CPU-seconds through this epoch (one torch thread, grouped passes), the mean
  over members; the build projects it to every distinct cell x 3 seeds.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

DISTINCT_CELLS = 5044
TARGET_TAU, BUDGET_CPU_HOURS = 0.6, 12.0


def load(path: Path, seeds: int = 3) -> tuple[list[str], dict[str, np.ndarray]]:
    """Cells with all seeds, and arrays ``(cells, seeds, epochs)`` for val, test, seconds."""
    from nas_gym.benchmarks.curves import read_lines

    by_cell: dict[str, dict[int, dict]] = {}
    for row in read_lines(path):
        by_cell.setdefault(row["arch"], {})[row["seed"]] = row
    epochs = max(len(r["val"]) for rows in by_cell.values() for r in rows.values())
    cells = [c for c, rows in by_cell.items() if len(rows) == seeds]

    def grid(field: str) -> np.ndarray:
        out = np.full((len(cells), seeds, epochs), np.nan)
        for i, c in enumerate(cells):
            for s, row in by_cell[c].items():
                values = [np.nan if v is None else v for v in row[field]]
                out[i, sorted(by_cell[c]).index(s), : len(values)] = values
        return out

    return cells, {f: grid(f) for f in ("val", "test", "seconds")}


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(kendalltau(a[ok], b[ok])[0]) if ok.sum() > 2 else float("nan")


def summarise(cells: list[str], arrays: dict[str, np.ndarray], kinds: dict[str, str]) -> list[dict]:
    """One dict per epoch with the page's measures."""
    val, secs = arrays["val"], arrays["seconds"]
    uniform = np.array([kinds.get(c) == "uniform" for c in cells])
    last = val.shape[2] - 1
    top = np.argsort(-np.nan_to_num(val[:, 0, last], nan=-1))[: max(3, len(cells) // 10)]
    rows = []
    for e in range(val.shape[2]):
        v = val[:, :, e]
        pairs = [_tau(v[uniform, i], v[uniform, j]) for i, j in itertools.combinations(range(v.shape[1]), 2)]
        mean = np.nanmean(v, axis=1)
        rows.append({
            "epoch": e + 1,
            "tau": float(np.nanmean(pairs)),
            "tau_top": _tau(v[top, 1], v[top, 2]),
            "vs_last": _tau(mean[uniform], np.nanmean(val[uniform, :, last], axis=1)),
            "median": float(np.nanmedian(mean[uniform])) * 100,
            "within": float(np.nanmedian(np.nanstd(v[uniform], axis=1))) * 100,
            "between": float(np.nanstd(mean[uniform])) * 100,
            "cpu_s": float(np.nanmean(secs[:, :, e])),
        })
        rows[-1]["build_h"] = rows[-1]["cpu_s"] * DISTINCT_CELLS * 3 / 3600
    return rows


def choose(summaries: dict[str, list[dict]]) -> tuple[str, dict] | None:
    """The cheapest (setting, epoch) with tau >= TARGET_TAU whose build fits the budget."""
    fits = [(r["build_h"], name, r) for name, rows in summaries.items() for r in rows
            if r["tau"] >= TARGET_TAU and r["build_h"] <= BUDGET_CPU_HOURS]
    if not fits:
        return None
    _, name, row = min(fits, key=lambda t: t[0])
    return name, row


def _plot(summaries: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, rows in summaries.items():
        ax.plot([r["build_h"] for r in rows], [r["tau"] for r in rows], marker="o", ms=3, label=name)
    ax.axhline(TARGET_TAU, color="grey", lw=0.8, ls="--")
    ax.axvline(BUDGET_CPU_HOURS, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("projected build, CPU-hours (5,044 cells x 3 seeds)")
    ax.set_ylabel("seed-to-seed Kendall tau (uniform cells)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(folder: Path, out: Path, cells: list[tuple[str, str]], settings: dict[str, dict]) -> None:
    kinds = dict(cells)
    summaries, counts = {}, {}
    for name in settings:
        path = folder / f"{name}.jsonl"
        if path.is_file():
            names, arrays = load(path)
            summaries[name] = summarise(names, arrays, kinds)
            counts[name] = (sum(kinds.get(c) == "uniform" for c in names), sum(kinds.get(c) == "top" for c in names))
    lines = ["# Pilot: the cell benchmark's training budget", "",
             "Command: `python scripts/pilot_cell_budget.py run --settings ...` then "
             "`python scripts/pilot_cell_budget.py report`. Conditions: 2-core CPU, one torch thread per worker, "
             "2 workers, cells of one pass trained together (`nas_gym/training/members.py`); 3 seeds per cell. "
             "Definitions: `scripts/pilot_report.py`.", ""]
    for name, rows in summaries.items():
        u, t = counts[name]
        overrides = ", ".join(f"`{k}={v}`" for k, v in settings[name].items())
        partial = "" if u >= 200 and t >= 50 else (" Stopped before the full 200 + 50 cells (to leave the CPU to the "
                                                   "table build once the trend was plain): provisional.")
        lines += [f"## `{name}`", "", f"Overrides on `mnist1d-cell`: {overrides}. Cells: {u} uniform + {t} top.{partial}",
                  "",
                  "| epoch | seed-to-seed tau | top-10% tau | vs last epoch | median val % | within-cell sd | "
                  "between-cell sd | CPU-s per cell-seed | build CPU-h |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['epoch']} | {r['tau']:.3f} | {r['tau_top']:.3f} | {r['vs_last']:.3f} | {r['median']:.1f} | "
                  f"{r['within']:.2f} | {r['between']:.2f} | {r['cpu_s']:.2f} | {r['build_h']:.1f} |" for r in rows]
        lines.append("")
    pick = choose(summaries)
    lines += ["## Choice", ""]
    if pick:
        name, row = pick
        lines.append(f"Cheapest setting with seed-to-seed tau >= {TARGET_TAU} and a build within "
                     f"{BUDGET_CPU_HOURS:g} CPU-hours: `{name}` at {row['epoch']} epochs (tau {row['tau']:.3f}, "
                     f"projected {row['build_h']:.1f} CPU-hours).")
    else:
        lines.append(f"No setting reaches seed-to-seed tau {TARGET_TAU} within {BUDGET_CPU_HOURS:g} CPU-hours; "
                     "the curve of tau against cost is in the figure.")
    image = out.parent / "images" / "pilot_cell_budget.png"
    _plot(summaries, image)
    lines += ["", f"![tau against projected build cost](images/{image.name})", ""]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
