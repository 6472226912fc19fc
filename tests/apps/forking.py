"""Forked test children that say where they hung: `dumps_stacks()` first thing in the child,
`kill_dumping()` in the parent for one still alive past its time."""

from __future__ import annotations

import faulthandler
import os
import signal
import time
from multiprocessing.process import BaseProcess


def dumps_stacks() -> None:
    """In a child: SIGUSR1 writes every thread's stack to stderr (pytest shows it on failure)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def kill_dumping(child: BaseProcess) -> None:
    """Have a hung `child` write its stacks, then kill it."""
    assert child.pid is not None
    os.kill(child.pid, signal.SIGUSR1)
    time.sleep(0.5)
    child.kill()
    child.join(5)
