"""A saver's life outside the event loop: forks, and being dropped without `aclose()`.

Fork. gunicorn `--preload`, Celery's prefork pool, uWSGI and `multiprocessing` (fork start
method) fork a process that may have used a saver. The child inherits the parent's sockets,
connection pools and the memory of its threads, but not the threads: using any of them from the
child hangs or corrupts the parent's sessions. `after_fork_in_child(saver, reset)` registers a
saver so that in every forked child `reset(saver)` runs first thing (`os.register_at_fork`): it
drops the parent's pools, connections and threads *without closing them* (closing would tear
down the parent's sessions) and the saver connects afresh, lazily, on first use in the child.
The parent is unaffected. What the child dropped is kept referenced (`forked_away`) so the
garbage collector never finalizes it in the child either.

Unclosed savers. `creation_site()` says where user code created a saver, so the
`ResourceWarning` a driver emits when a saver is garbage-collected with its pools still open
(`warn_unclosed`) points at the line that forgot `aclose()`; the driver's finalizer then
releases the pools itself.

Caller loops. The sync API runs the engine in an event loop owned by the calling thread (one
per thread), which serves one run at a time. `mark_caller_loop` records such a loop and
`serves_one_caller` asks about one, so a driver can keep that loop's pool small (no warm-up for
bursts that cannot happen there): a server with many synchronous worker threads then holds about
one connection per thread, not a full pool each.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

__all__ = [
    "after_fork_in_child",
    "creation_site",
    "forked_away",
    "mark_caller_loop",
    "serves_one_caller",
    "warn_unclosed",
]

_caller_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def mark_caller_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Record `loop` as a loop that one synchronous caller's thread owns (see the module doc)."""
    _caller_loops.add(loop)


def serves_one_caller(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether `loop` is a sync-API caller's own loop, serving one run at a time."""
    return loop in _caller_loops


_T = TypeVar("_T")

_registered: list[tuple[weakref.ref[Any], Callable[[Any], None]]] = []
_lock = threading.Lock()

forked_away: list[object] = []
"""What forked children dropped from their parent's savers: referenced forever, never closed."""


def after_fork_in_child(saver: _T, reset: Callable[[_T], None]) -> None:
    """Run `reset(saver)` in every child forked from now on while `saver` is alive. `reset`
    must not hold a reference to `saver` (pass an unbound method or a plain function)."""
    with _lock:
        _registered.append((weakref.ref(saver), reset))
        if len(_registered) > 64:  # forget savers that were collected
            _registered[:] = [(ref, fn) for ref, fn in _registered if ref() is not None]


def _in_child() -> None:
    global _lock
    _lock = threading.Lock()  # (another thread may have held it at the fork)
    for ref, reset in list(_registered):
        saver = ref()
        if saver is not None:
            try:
                reset(saver)
            except Exception as exc:  # never break the child's start-up
                sys.stderr.write(f"hitl-async: could not reset {saver!r} after fork: {exc!r}\n")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)


_INTERNAL = (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # hitl_async/
    os.sep + "hitl_async_",  # the drivers' packages
    os.sep + "asyncio" + os.sep,
    os.sep + "contextlib.py",
    os.sep + "functools.py",
)


def creation_site() -> str:
    """`file:line` of the first caller outside hitl-async and its drivers (where user code
    created the object being constructed)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not any(part in name for part in _INTERNAL):
            return f"{name}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def warn_unclosed(what: str, site: str) -> None:
    """The `ResourceWarning` for a saver collected without `aclose()`."""
    warnings.warn(
        f"{what} created at {site} was garbage-collected without aclose(): its connections "
        "are being closed now. Close savers with `await saver.aclose()` (or `async with`).",
        ResourceWarning,
        stacklevel=2,
    )
