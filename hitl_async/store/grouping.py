"""Group commit for store calls: concurrent calls of one event loop share round trips.

A call made while fewer than `batches_in_flight` batches are under way (and none waits) goes out
at once: an idle store adds no latency. Calls made while that many are under way wait together
and go out as one merged batch when one finishes (right after the callers it answered have had
a chance to call again, so their next calls join it): their puts are one statement and one
commit, their gets and searches one query where the driver can. Each caller still gets its own
results, and its own error for an invalid operation (every call is checked before it joins a
batch); a failure of the database reaches every caller of the batch it was in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Batch", "Grouper"]

Run = Callable[[list[Any]], Awaitable[list[Any]]]


class Batch(list[Any]):
    """A merged batch: the operations of several calls, with each call's own list in `parts`
    (lets the runner reuse what it worked out for each call when it checked it)."""

    parts: list[list[Any]]


class Grouper:
    """Merges concurrent `submit(ops)` calls of one event loop into batches for `run`."""

    def __init__(self, run: Run, batches_in_flight: int = 1, max_batch: int = 256) -> None:
        self.run = run
        self.batches_in_flight = batches_in_flight
        self.max_batch = max_batch
        self.in_flight = 0
        self.scheduled = False
        self.waiting: list[tuple[list[Any], asyncio.Future[list[Any]]]] = []

    async def submit(self, ops: list[Any]) -> list[Any]:
        """Run `ops` (alone, or in a batch with other callers' operations); their results."""
        if self.in_flight < self.batches_in_flight and not self.scheduled and not self.waiting:
            self.in_flight += 1
            try:
                return await self.run(ops)
            finally:
                self.in_flight -= 1
                if self.waiting:  # else a caller awaiting calls by itself goes straight out
                    self._soon()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.waiting.append((ops, future))
        if self.in_flight < self.batches_in_flight:
            self._soon()  # nothing under way will send it
        return await future

    def _soon(self) -> None:
        """Send the next batch after the callers just answered have run: they usually call
        again at once, and their next calls then join that batch."""
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        """Send the waiting calls (up to `max_batch` operations) as one batch, in a task."""
        self.scheduled = False
        if not self.waiting or self.in_flight >= self.batches_in_flight:
            return
        taken: list[tuple[list[Any], asyncio.Future[list[Any]]]] = []
        count = 0
        while self.waiting and (not taken or count + len(self.waiting[0][0]) <= self.max_batch):
            ops, future = self.waiting.pop(0)
            if future.cancelled():
                continue
            taken.append((ops, future))
            count += len(ops)
        if taken:
            self.in_flight += 1
            asyncio.get_running_loop().create_task(self._batch(taken))

    async def _batch(self, taken: list[tuple[list[Any], asyncio.Future[list[Any]]]]) -> None:
        merged = Batch(op for ops, _ in taken for op in ops)
        merged.parts = [ops for ops, _ in taken]
        try:
            results = await self.run(merged)
        except BaseException as exc:
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            start = 0
            for ops, future in taken:
                if not future.done():
                    future.set_result(results[start : start + len(ops)])
                start += len(ops)
        finally:
            self.in_flight -= 1
            self._soon()
