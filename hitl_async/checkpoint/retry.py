"""Waiting out a store outage: backoff with `tenacity`, and one log line per outage.

A worker (or any loop that must outlive a server restart) calls the store through
`retry_while_unavailable(call, outage)`: a transient `StoreUnavailableError` is retried with
exponential backoff and jitter (0.1 s doubling up to `max_wait`), anything else is raised at
once. The outage is logged once when it starts (one line, no traceback) and once when the store
answers again, however many retries it took, instead of a traceback per attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_never,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from hitl_async.errors import StoreUnavailableError

__all__ = ["OutageLog", "retry_while_unavailable"]

_T = TypeVar("_T")


class OutageLog:
    """Logs a store outage once when it starts and once when it ends."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.since: float | None = None
        self.attempts = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        """A call failed because the store is unavailable (logged only if it was up)."""
        self.attempts += 1
        if self.since is None:
            self.since = time.monotonic()
            self.logger.warning(
                "%s: the checkpoint store is unavailable; retrying with backoff until it is "
                "back (logged once per outage): %s",
                self.what,
                exc,
            )

    def recovered(self) -> None:
        """A call succeeded (logged only if the store was down)."""
        if self.since is not None:
            self.logger.warning(
                "%s: the checkpoint store is back after %.1f s (%d failed attempts)",
                self.what,
                time.monotonic() - self.since,
                self.attempts,
            )
            self.since = None
            self.attempts = 0


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, StoreUnavailableError) and exc.transient


async def retry_while_unavailable(
    call: Callable[[], Awaitable[_T]],
    outage: OutageLog,
    *,
    max_wait: float = 30.0,
    give_up: Callable[[], bool] | None = None,
) -> _T:
    """`await call()`, retried while the store is transiently unavailable (forever, or until
    `give_up()` is true: then the last error is raised)."""
    stop: stop_base = stop_never
    if give_up is not None:
        check = give_up

        class _GiveUp(stop_base):
            def __call__(self, retry_state: RetryCallState) -> bool:
                return check()

        stop = _GiveUp()

    def note(state: RetryCallState) -> None:
        if state.outcome is not None and (exc := state.outcome.exception()) is not None:
            outage.failed(exc)

    retrying = AsyncRetrying(
        retry=retry_if_exception(_transient),
        wait=wait_exponential(multiplier=0.1, max=max_wait) + wait_random(0, 0.1),
        stop=stop,
        before_sleep=note,
        sleep=anyio.sleep,
        reraise=True,
    )

    async def attempt() -> _T:  # (a coroutine function: tenacity awaits only those)
        return await call()

    result: _T = await retrying(attempt)
    outage.recovered()
    return result
