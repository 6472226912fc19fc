"""Renewing the leases of running runs from one watchdog thread, so a superstep that takes long
(an LLM call, a slow API) keeps its thread without a renewal task per step.

Each run registers its renewal coroutine with its event loop's token; the thread sleeps until the
earliest renewal is due and runs it in that loop with `anyio.from_thread.run`, while the loop
keeps running the step.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from anyio import from_thread
from anyio.lowlevel import current_token

from hitl_async.errors import LeaseLostError

__all__ = ["keep", "release"]

_lock = threading.Condition()
_due: list[tuple[float, int]] = []  # (when, key) heap
_entries: dict[int, tuple[Any, Callable[[], Coroutine[Any, Any, float]]]] = {}
_keys = itertools.count()
_thread: threading.Thread | None = None
_RETRY = 1.0


def keep(renew: Callable[[], Coroutine[Any, Any, float]], first: float) -> int:
    """Call `renew()` in the current event loop `first` seconds from now, then again after the
    delay each call returns; returns a key for `release`."""
    global _thread
    token = current_token()
    key = next(_keys)
    with _lock:
        _entries[key] = (token, renew)
        heapq.heappush(_due, (time.monotonic() + first, key))
        if _thread is None:
            _thread = threading.Thread(target=_loop, name="hitl-lease-keeper", daemon=True)
            _thread.start()
        _lock.notify()
    return key


def release(key: int) -> None:
    """Stop renewing (the run ended)."""
    with _lock:
        _entries.pop(key, None)


def _loop() -> None:
    while True:
        with _lock:
            while True:
                while _due and _due[0][1] not in _entries:
                    heapq.heappop(_due)
                if _due and _due[0][0] <= time.monotonic():
                    _, key = heapq.heappop(_due)
                    token, renew = _entries[key]
                    break
                _lock.wait(None if not _due else max(0.0, _due[0][0] - time.monotonic()))
        delay: float | None
        try:
            delay = from_thread.run(renew, token=token)
        except LeaseLostError:
            delay = None  # taken over: the run's next write finds out
        except RuntimeError:
            delay = None  # its event loop is gone
        except Exception:
            delay = _RETRY  # e.g. the store is briefly unreachable: try again soon
        with _lock:
            if key in _entries and delay is not None:
                heapq.heappush(_due, (time.monotonic() + delay, key))
