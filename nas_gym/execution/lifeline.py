"""Worker processes that stop when their parent dies, however it dies.

A pool's workers are told to stop by their parent; a parent killed with SIGKILL (or by the
out-of-memory killer) tells nobody, and its spawned workers, each holding a trained network's
memory (about 580 MB in a table build), went on forever with the multiprocessing resource
tracker beside them. :func:`die_with_parent` is called first in every worker's initializer:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes the kernel kill the worker the moment
  its parent exits;
* everywhere (macOS has no such call), a daemon thread checks every half second whether the
  parent is still the process that started the worker, and ends the worker if not. A reparented
  process sees another ``getppid()``, so no pipe or signal from the dead parent is needed.

The resource tracker ends by itself once no process holds its pipe, that is, once the workers are gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this process end when ``parent_pid`` (default: the current parent) is gone.

    :param parent_pid: the pid the parent passed in (``os.getpid()`` there): more reliable than
        ``os.getppid()`` here, which may already be someone else's if the parent died during start-up.
    """
    parent = os.getppid() if parent_pid is None else parent_pid
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl in this libc: the watchdog below still works
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="nas-gym-lifeline", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)
