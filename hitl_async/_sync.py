"""The sync facade's event loop: one background thread running an anyio portal, shared by all
synchronous calls, so savers that connected in it stay usable across calls."""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

__all__ = ["iterate", "run"]

T = TypeVar("T")

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_portal_cm: AbstractContextManager[BlockingPortal] | None = None


def _stop() -> None:
    global _portal, _portal_cm
    if _portal_cm is not None:
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            _portal_cm.__exit__(None, None, None)
    _portal = _portal_cm = None


def _get() -> BlockingPortal:
    global _portal, _portal_cm
    with _lock:
        if _portal is None:
            _portal_cm = start_blocking_portal(backend="asyncio")
            _portal = _portal_cm.__enter__()
            atexit.register(_stop)
        return _portal


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a coroutine function to completion from synchronous code."""
    return _get().call(fn, *args)


def iterate(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from synchronous code, one item per hop; closing the returned
    iterator early closes the async one too."""
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
