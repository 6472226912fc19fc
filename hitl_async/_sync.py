"""The sync facade's event loop: one background thread running an anyio portal, shared by all
synchronous calls, so savers that connected in it stay usable across calls.

A forked child (gunicorn, Celery, multiprocessing) does not inherit the thread: it starts a
portal of its own on its first synchronous call; the parent's is unaffected."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

__all__ = ["iterate", "iterate_batches", "run"]

T = TypeVar("T")

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_portal_cm: AbstractContextManager[BlockingPortal] | None = None
_owner_pid = 0
"""The process that started the portal (`atexit` in a forked child must not stop it)."""


def _stop() -> None:
    global _portal, _portal_cm
    if _portal_cm is not None and _owner_pid == os.getpid():
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            _portal_cm.__exit__(None, None, None)
    _portal = _portal_cm = None


_inherited: list[object] = []
"""A forked child's copy of its parent's portal, kept so that it is never finalized: closing it
would wait for a thread that does not exist in the child."""


def _forget_in_child() -> None:
    """After `fork()`: the portal's thread did not come along; start afresh when needed."""
    global _lock, _portal, _portal_cm
    _inherited.append((_portal, _portal_cm))
    _lock = threading.Lock()
    _portal = _portal_cm = None


os.register_at_fork(after_in_child=_forget_in_child)


def _get() -> BlockingPortal:
    global _portal, _portal_cm, _owner_pid
    with _lock:
        if _portal is None:
            _portal_cm = start_blocking_portal(backend="asyncio")
            _portal = _portal_cm.__enter__()
            if _owner_pid == 0:
                atexit.register(_stop)
            _owner_pid = os.getpid()
        return _portal


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a coroutine function to completion from synchronous code."""
    return _get().call(fn, *args)


def iterate_batches(agen: AsyncIterator[list[T]]) -> Iterator[T]:
    """Iterate an async iterator of batches from synchronous code, one thread hop per batch;
    closing the returned iterator early (or dropping it) closes the async one too."""
    portal = _get()

    async def step() -> list[T] | None:
        try:
            return await agen.__anext__()
        except StopAsyncIteration:
            return None

    finished = False
    try:
        while (batch := portal.call(step)) is not None:
            yield from batch
        finished = True
    finally:
        if not finished:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                portal.call(aclose)


def iterate(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from synchronous code, one item per hop."""
    portal = _get()

    async def step() -> tuple[bool, Any]:
        try:
            return True, await agen.__anext__()
        except StopAsyncIteration:
            return False, None

    finished = False
    try:
        while True:
            more, item = portal.call(step)
            if not more:
                finished = True
                return
            yield item
    finally:
        if not finished:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                portal.call(aclose)
