"""The run record: buffered CSV rows, what a checkpoint's state restores, reading back."""

import csv

from nas_gym.runs.runlog import CSV_FIELDS, EVALUATIONS_CSV, RunLog, read_records


def info(arch: str, val_acc: float, status: str = "ok") -> dict:
    return {"arch": arch, "val_acc": val_acc, "params": 10, "flops": 100, "status": status, "reason": ""}


def rows(run_dir) -> list[dict[str, str]]:
    with (run_dir / EVALUATIONS_CSV).open(newline="") as f:
        return list(csv.DictReader(f))


def test_rows_reach_the_file_at_flush_and_close(tmp_path):
    log = RunLog(tmp_path)
    assert (tmp_path / EVALUATIONS_CSV).read_text().strip() == ",".join(CSV_FIELDS)
    log.add(0.5, info("conv3-16", 0.5), evaluations=1, cache_hits=0)
    assert rows(tmp_path) == []
    log.flush()
    assert [r["arch"] for r in rows(tmp_path)] == ["conv3-16"]
    log.add_invalid()
    log.add(0.7, info("maxpool|conv3-16", 0.7), evaluations=2, cache_hits=1)
    log.close()
    assert [(r["episode"], r["evaluations"], r["cached"]) for r in rows(tmp_path)] == [("1", "1", "0"), ("3", "2", "1")]


def test_resume_cuts_the_csv_back_to_the_checkpoint(tmp_path):
    """Rows after the checkpoint (episodes to be played again) and a line torn by a kill go;
    counters and the best come back; new rows follow the kept ones."""
    log = RunLog(tmp_path)
    for i, acc in enumerate([0.4, 0.9, 0.6, 0.95, 0.5]):
        log.add(acc, info(f"conv3-{16 + i}", acc), evaluations=i + 1, cache_hits=0)
        if i == 2:
            log.add_invalid()  # episode 4: nothing evaluated
            state = log.state()  # a checkpoint after episode 4, 3 records
    log.close()
    with (tmp_path / EVALUATIONS_CSV).open("a") as f:
        f.write("7,conv3-9,0.3")  # cut mid-row by a kill
    resumed = RunLog(tmp_path, resume=state)
    assert (resumed.episodes, resumed.invalid_episodes, len(resumed.records)) == (4, 1, 3)
    assert resumed.best is not None and resumed.best.val_acc == 0.9
    resumed.add(0.8, info("avgpool", 0.8), evaluations=4, cache_hits=0)
    resumed.close()
    assert [r.episode for r in read_records(tmp_path)] == [1, 2, 3, 5]
    assert [r["arch"] for r in rows(tmp_path)] == ["conv3-16", "conv3-17", "conv3-18", "avgpool"]


def test_in_memory_record_writes_nothing(tmp_path):
    log = RunLog(None)
    _, new_best = log.add(0.3, info("conv3-16", 0.3, status="nan_loss"), evaluations=1, cache_hits=0)
    assert not new_best and log.best is None and log.state()["records"] == 1
    log.close()
    assert not list(tmp_path.iterdir())
