"""Group commit for network drivers: concurrent calls of one kind share a round trip.

A store call costs a round trip whatever it carries, and many runs of one process call the store
at once (200 threads resumed together). `Batcher` lets a driver send, in one round trip, every
call that arrived while its earlier round trips were in flight: at most `concurrency` batches are
in flight, so a call made when the store is idle goes out at once (no added latency), and calls
made under load are coalesced. Each call still gets its own result or its own exception.

Drivers use it with a `send` that takes a list of requests and returns one outcome per request,
in order: a result, or an exception instance that is raised to that request's caller only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["Batcher"]

Req = TypeVar("Req")
Res = TypeVar("Res")


class Batcher(Generic[Req, Res]):
    """Coalesce concurrent `submit()` calls into batches for `send` (one event loop).

    `send(batch)` must return one outcome per request, in order (a result or an exception to
    raise to that caller). If `send` itself raises, every request of the batch gets that error.
    A caller that is cancelled stops waiting; its request still goes out with its batch (as a
    call whose reply was lost would).
    """

    def __init__(
        self,
        send: Callable[[list[Req]], Awaitable[Sequence[Res | BaseException]]],
        *,
        concurrency: int = 2,
        max_batch: int = 64,
    ) -> None:
        if concurrency < 1 or max_batch < 1:
            raise ValueError("Batcher needs concurrency >= 1 and max_batch >= 1")
        self._send = send
        self._concurrency = concurrency
        self._max_batch = max_batch
        self._queue: list[tuple[Req, asyncio.Future[Res]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Drain loops still able to take requests. Not len(_tasks): a task is discarded from
        # `_tasks` by a done callback that runs some time after it stopped taking requests, and
        # a request queued in between would find no drainer and wait forever.
        self._draining = 0
        self.batches = 0
        """How many batches were sent (for tests and benchmarks)."""
        self.requests = 0
        """How many requests they carried."""

    async def submit(self, request: Req) -> Res:
        """Send `request` with whatever else is waiting; return its own result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Res] = loop.create_future()
        self._queue.append((request, fut))
        if self._draining < self._concurrency:
            self._draining += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self.batches += 1
                self.requests += len(batch)
                try:
                    outcomes = await self._send([req for req, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError(
                            f"batched send returned {len(outcomes)} outcomes for {len(batch)} "
                            "requests"
                        )
                except BaseException as exc:
                    for _, fut in batch:
                        _fail(fut, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, fut), outcome in zip(batch, outcomes, strict=True):
                    if fut.done():
                        continue  # its caller was cancelled
                    if isinstance(outcome, BaseException):
                        fut.set_exception(outcome)
                    else:
                        fut.set_result(outcome)
        except BaseException as exc:
            # This loop was cancelled (its event loop is shutting down): requests still queued
            # fail with it unless another loop is left to send them.
            if self._draining == 1:
                queued, self._queue = self._queue, []
                for _, fut in queued:
                    _fail(fut, exc)
            raise
        finally:
            self._draining -= 1

    async def wait_idle(self) -> None:
        """Wait until every batch sent or queued so far is answered (before closing)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    """Give a waiting caller the error of its batch (cancel it for a cancellation)."""
    if fut.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        fut.cancel()
    else:
        fut.set_exception(exc)
