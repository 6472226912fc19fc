"""The run queue on SQLite (`RunQueueStore`): the `runs` table; claims pick and mark the oldest
runnable request in one write transaction, so processes sharing the file never both win. SQLite
cannot notify another process: `wait_for_work` polls `PRAGMA data_version` with backoff, and is
woken at once by this saver's own enqueues and finishes (`_watch`)."""

from __future__ import annotations

import time

from hitl_async.checkpoint.base import RunRequest
from hitl_async.checkpoint.capabilities import RunQuery, RunQueueStore
from hitl_async.checkpoint.ids import check_id
from hitl_async_sqlite import _coordination as _coord
from hitl_async_sqlite._connection import SqliteConnection
from hitl_async_sqlite._watch import POLL_MAX, POLL_MIN, queue_key, thread_key
from hitl_async_sqlite._worker import WRITE

__all__ = ["SqliteRunQueue"]


class SqliteRunQueue(SqliteConnection, RunQueueStore):
    """Requests stored, claimed, renewed, finished and listed; waiting for work."""

    async def enqueue(self, request: RunRequest) -> None:
        """Store a queued request (`ValueError` if its id exists) and wake waiting workers."""
        check_id("thread id", request.thread_id)
        job = _coord.enqueue_job(request)
        await self._write(job, queue_key(request.queue), thread_key(request.thread_id))

    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        """Claim the oldest runnable request of `queue` (pick and mark in one transaction)."""
        claimed: RunRequest | None = await self._write(_coord.claim_job(queue, owner, ttl))
        return claimed

    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        """Extend `owner`'s claim from now; False if it is no longer held."""
        renewed: bool = await self._write(_coord.renew_claim_job(request_id, owner, ttl))
        return renewed

    async def finish_request(
        self,
        request_id: str,
        owner: str | None,
        status: str,
        *,
        result: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        """Set a final status (or `queued` to give it back); see `BaseSaver`."""
        watchers = self._watchers

        def committed(changed: tuple[str, str] | None) -> None:
            if changed is not None:
                watchers.notify((queue_key(changed[0]), thread_key(changed[1])))

        job = _coord.finish_job(request_id, owner, status, result, error)
        changed = await self._call(WRITE, job, committed)
        return changed is not None

    async def get_request(self, request_id: str) -> RunRequest | None:
        """The request, or None."""
        return await self._read(_coord.get_request, request_id)

    async def list_requests(self, query: RunQuery = RunQuery()) -> list[RunRequest]:  # noqa: B008
        """A page of requests, newest first; damaged rows listed with `damaged` set."""
        return await self._read(_coord.list_requests, query)

    async def wait_for_work(self, queue: str, timeout: float) -> None:
        """Return once a request of `queue` is runnable, or after `timeout` seconds.

        Re-checks the queue when another connection committed (`PRAGMA data_version`), when
        this saver enqueued or finished a request of it, or when a live claim expired.
        """
        if timeout <= 0:
            return
        deadline = time.monotonic() + timeout
        with self._watchers.watch(queue_key(queue)) as waiter:
            seen: int | None = None  # None: re-read the queue's state
            expiry: float | None = None
            delay = POLL_MIN
            while True:
                seen, state = await self._read(_coord.poll_work, queue, seen)
                if state is not None:
                    ready, expiry = state
                    if ready:
                        return
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                await waiter.sleep(min(delay, left))
                delay = min(delay * 2, POLL_MAX)
                if waiter.fired or (expiry is not None and time.time() >= expiry):
                    seen = None
                waiter.arm()
