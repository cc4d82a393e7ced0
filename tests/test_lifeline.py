"""Workers die with their parent (issue 24, defect 9): a parent killed with SIGKILL tells its
workers nothing, so each worker must notice by itself (``nas_gym.execution.lifeline``).

A parent process starts real workers (the process backend's pool, and compare's pool with its
initializer), prints their pids and waits; the test kills the parent with SIGKILL and waits for
the workers to disappear. Before the lifeline the workers of a busy pool went on forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

POOL_PARENT = """
import os, threading, time
from nas_gym.config import load_config
from nas_gym.execution.parallel import ProcessBackend
config = load_config("mnist1d-tiny", {"evaluator.backend": "process", "evaluator.workers": 2})
backend = ProcessBackend(config, worker_hook=os.environ["HOLD_HOOK"])  # the test's hook, named by the test
space = config.search_space()
archs = [space.parse("conv3-16"), space.parse("conv3-32")]
threading.Thread(target=backend.run, args=(archs,), daemon=True).start()  # both busy in the hook
import os, pathlib
busy = pathlib.Path(os.environ["HOLD_DIR"])
while len(list(busy.iterdir())) < 2:  # both workers inside the hook, not still starting up
    time.sleep(0.05)
print(*backend.pids, flush=True)
time.sleep(600)
"""

COMPARE_PARENT = """
import multiprocessing, os, time
from concurrent.futures import ProcessPoolExecutor
from nas_gym.runs.compare import _one_thread
pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread,
                           initargs=(os.getpid(),))
pids = set()
while len(pids) < 2:  # a busy pool: each worker holds a task when the parent dies
    pids = {f.result() for f in [pool.submit(os.getpid) for _ in range(8)]}
print(*pids, flush=True)
for _ in range(2):
    pool.submit(time.sleep, 600)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a reaper (a container's init may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and parent-death are POSIX")
@pytest.mark.parametrize("script", [pytest.param(POOL_PARENT, id="process-backend"),
                                    pytest.param(COMPARE_PARENT, id="compare-pool", marks=pytest.mark.slow)])
def test_workers_end_when_their_parent_is_killed(script, tmp_path):
    hold = tmp_path / "hold.py"  # the process backend's workers call it before training: they stay busy
    (tmp_path / "busy").mkdir()
    hold.write_text("import os, time\n\ndef hold(text):\n    open(os.path.join(os.environ['HOLD_DIR'], str(os.getpid())), 'w')"
                    ".close()\n    time.sleep(600)\n")
    env = {**os.environ, "HOLD_HOOK": f"{hold}:hold", "HOLD_DIR": str(tmp_path / "busy")}
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 20  # a liveness bound: the lifeline polls every 0.5 s
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in pids if alive(p)], "workers outlived their parent"
    finally:
        parent.kill()
        for p in pids if "pids" in locals() else []:
            if alive(p):
                os.kill(p, signal.SIGKILL)
