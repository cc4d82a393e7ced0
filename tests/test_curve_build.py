"""A learning-curve build: grouped passes append one line per member, a torn line or a killed
build resumes without retraining, and the lines become a table the evaluator answers from."""

from __future__ import annotations

import json

import pytest

from nas_gym.benchmarks import curves
from nas_gym.benchmarks.header import make_header
from nas_gym.config import load_config
from nas_gym.evaluators.table import TableEvaluator, write_table

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny(tmp_path):
    """A 2-stage cell on 600 generated signals, 2 epochs: a pass takes about a second."""
    cfg = load_config("mnist1d-cell", {"space.stages": "2", "space.channels": "4", "data.samples": "600",
                                       "data.generation_seed": "5", "data.root": str(tmp_path / "data"),
                                       "train.epochs": "2", "train.batch_size": "32"})
    return cfg, [c.text() for c in cfg.search_space().distinct()[40:43]]


def test_lines_resume_and_torn_line(tiny, tmp_path):
    cfg, cells = tiny
    path = tmp_path / "lines.jsonl"
    lines = curves.build(cfg, cells[:2], (0, 1), path, workers=1, group=2)
    assert sorted((r["arch"], r["seed"]) for r in lines) == sorted((c, s) for c in cells[:2] for s in (0, 1))
    for r in lines:
        assert len(r["val"]) == len(r["test"]) == len(r["loss"]) == len(r["seconds"]) == 2
        assert r["seconds"][0] < r["seconds"][1] and all(0 <= v <= 1 for v in r["val"] + r["test"])
    with path.open("a") as f:
        f.write('{"arch": "torn')  # a kill in the middle of a write
    before = path.read_text()
    again = curves.build(cfg, cells[:2], (0, 1), path, workers=1, group=2)  # nothing left to train
    assert len(again) == 4 and path.read_text() == before.rsplit("\n", 1)[0] + "\n"  # the torn tail is cut
    more = curves.build(cfg, cells, (0, 1), path, workers=1, group=2)  # only the third cell trains
    assert len(more) == 6 and [json.loads(x)["arch"] for x in path.read_text().splitlines()[4:]] == [cells[2]] * 2


def test_lines_make_a_table_answering_every_epoch(tiny, tmp_path):
    cfg, cells = tiny
    space = cfg.search_space()
    lines = curves.build(cfg, cells, (0, 1), tmp_path / "lines.jsonl", workers=1, group=3)
    archs = [space.parse(c) for c in cells]
    rows = curves.table_rows(space, archs, (0, 1), lines)
    by = {(r["arch"], r["seed"]): r for r in lines}
    for arch, row in zip(archs, rows, strict=True):
        assert row["val_acc"] == [by[(arch.text(), s)]["val"][-1] for s in (0, 1)]
        assert row["curves"]["val_acc"][1] == by[(arch.text(), 1)]["val"]
    # a table must cover the space: fill the other cells with the first row's numbers
    filler = {k: v for k, v in rows[0].items() if k != "arch"}
    known = {a.key() for a in archs}
    all_rows = rows + [{**filler, "arch": a.text()} for a in space.distinct() if a.key() not in known]
    path = tmp_path / "t.jsonl.gz"
    write_table(path, make_header(cfg, [0, 1], all_rows, 1), all_rows)
    ev = TableEvaluator(cfg, seed=1, path=path, epochs=1)
    assert ev.evaluate(archs[2]).val_acc == by[(cells[2], 1)]["val"][0]
    assert ev.stats.train_seconds == pytest.approx(by[(cells[2], 1)]["seconds"][0])


def test_every_recorded_epoch_matches_the_ordinary_trainer(tiny, tmp_path):
    """Honesty: a member drawn afresh each run (printed), retrained alone by the ordinary
    single-member trainer, gives the recorded curve at every epoch. Tolerance: 4 validation
    samples; a pass and a run alone sum in other orders, and a bias that training-mode batch norm
    hides drifts under Adam by rounding, which moved 3 of 800 validation samples in one cell
    (grouped against alone, bit-identical training loss)."""
    import numpy as np
    import torch

    from nas_gym.data import load_dataset
    from nas_gym.training.train import forked_rng, train_members

    cfg, cells = tiny
    lines = curves.build(cfg, cells, (0, 1), tmp_path / "lines.jsonl", workers=1, group=3)
    seed = int(np.random.SeedSequence().entropy % 2**32)
    pick = lines[int(np.random.default_rng(seed).integers(len(lines)))]
    print(f"seed {seed}: {pick['arch']} seed {pick['seed']}")
    data = load_dataset(cfg.data)
    space = cfg.search_space(data.input_shape)
    with forked_rng(torch.device("cpu")):
        torch.manual_seed(pick["seed"])
        model = space.build_model(space.parse(pick["arch"]), data.input_shape, data.num_classes)
    alone = train_members([model], data, cfg.train, curves.RUNTIME, [pick["seed"]], want_test=True)[0]
    tol = 4 / len(data.y_val) + 1e-9
    assert [p.val_acc for p in alone.curve] == pytest.approx(pick["val"], abs=tol)
    assert [p.test_acc for p in alone.curve] == pytest.approx(pick["test"], abs=4 / len(data.y_test) + 1e-9)
