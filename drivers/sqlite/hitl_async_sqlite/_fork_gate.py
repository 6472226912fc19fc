"""No thread of this driver is inside SQLite when the process forks.

SQLite's process-wide mutexes (the unix VFS's list of open files among them) are copied into a
forked child in whatever state they were in: forked while another thread ran a statement, the
child's first `sqlite3.connect` can wait on a mutex nobody will release, for ever (gunicorn
`--preload`, Celery's prefork pool and `multiprocessing`'s fork start method all fork a process
that may be writing checkpoints in a background run). Every lock the driver holds while it runs
statements is registered here; just before a fork the forking thread takes them all, so the fork
happens between statements, and releases them right after, in the parent and in the child.
A statement that outlasts `WAIT` (a connection waiting for another process's lock) does not hold
the fork up longer than that. SQLite used directly by other code in other threads is not covered.
"""

from __future__ import annotations

import os
import threading
import weakref

__all__ = ["WAIT", "hold_during_fork"]

WAIT = 2.0
"""Seconds a fork waits for each statement in progress before forking regardless."""

_gates: weakref.WeakSet[threading.Lock] = weakref.WeakSet()
_held = threading.local()


def hold_during_fork(lock: threading.Lock) -> None:
    """Register `lock`, held by whoever runs statements on a connection, to be taken around
    every fork of this process (for as long as the lock is alive)."""
    _gates.add(lock)


def _before_fork() -> None:
    taken: list[threading.Lock] = []
    for lock in sorted(_gates, key=id):  # one order: two threads forking at once never deadlock
        if lock.acquire(timeout=WAIT):
            taken.append(lock)
    _held.locks = taken


def _after_fork() -> None:
    taken: list[threading.Lock] = getattr(_held, "locks", [])
    _held.locks = []
    for lock in taken:
        lock.release()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)
