"""`PostgresRunQueue`: the run queue of `PostgresSaver` (`RunQueueStore`), table `runs`: enqueue
and finish NOTIFY the schema's queue channel, `claim_request` is one call of `hitl_claim`."""

from __future__ import annotations

import time
from typing import Any

import anyio

from hitl_async.checkpoint.base import RunRequest
from hitl_async.checkpoint.capabilities import RunQuery, RunQueueStore
from hitl_async.checkpoint.rows import checked_request
from hitl_async_postgres._connections import PostgresConnections
from hitl_async_postgres._rows import check_text, one, run_request

__all__ = ["PostgresRunQueue"]

_FINAL_STATUSES = frozenset({"done", "failed", "cancelled", "queued"})


class PostgresRunQueue(PostgresConnections, RunQueueStore):
    """Run requests claimed by workers, at most one running per thread."""

    async def enqueue(self, request: RunRequest) -> None:
        """Insert the request and NOTIFY its queue, in one statement; `ValueError` if its id is
        taken."""
        check_text("run request id", request.id)
        check_text("queue", request.queue)
        check_text("thread_id", request.thread_id)
        pool = await self._pool()
        rows = await pool.fetch(
            self._q.enqueue,
            request.id,
            request.queue,
            request.thread_id,
            request.payload,
            request.status,
            request.created_at,
            request.owner,
            request.claim_expires,
            request.attempts,
            request.result,
            request.error,
        )
        if not rows:
            raise ValueError(f"run request {request.id!r} already exists")

    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        """One call of `hitl_claim` (see migration 4): never the same request twice, never two
        running requests of one thread."""
        pool = await self._pool()
        row = await pool.fetchrow(self._q.claim, queue, owner, ttl)
        return None if row is None else run_request(row)

    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        pool = await self._pool()
        return await pool.fetchval(self._q.renew_claim, request_id, owner, ttl) is not None

    async def finish_request(
        self,
        request_id: str,
        owner: str | None,
        status: str,
        *,
        result: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        if status not in _FINAL_STATUSES:
            raise ValueError(
                f"cannot finish run request {request_id!r} with status {status!r}: use one of "
                f"{sorted(_FINAL_STATUSES)}"
            )
        pool = await self._pool()
        row = one(
            await pool.fetchrow(self._q.finish_request, request_id, owner, status, result, error),
            None,
            f"finishing run request {request_id!r}",
        )
        return bool(row["changed"])

    async def get_request(self, request_id: str) -> RunRequest | None:
        pool = await self._pool()
        row = await pool.fetchrow(self._q.get_request, request_id)
        return None if row is None else run_request(row)

    async def list_requests(self, query: RunQuery = RunQuery()) -> list[RunRequest]:  # noqa: B008
        """A page of requests, newest first; damaged rows listed with `damaged` set."""
        if query.limit <= 0:
            return []
        args: list[Any] = [query.limit]
        args += [v for v in (query.queue, query.thread_id, query.status) if v is not None]
        if query.before is not None:
            args += list(query.before)
        sql = self._q.list_requests(
            queue=query.queue is not None,
            thread=query.thread_id is not None,
            status=query.status is not None,
            before=query.before is not None,
        )
        pool = await self._pool()
        rows = await pool.fetch(sql, *args)
        return [checked_request(dict(row.items()), lenient=True) for row in rows]

    # -- coordination: waiting ---------------------------------------------------------------

    async def wait_for_work(self, queue: str, timeout: float) -> None:
        """Listen first, then look: a request queued in between is found by the look, one
        queued later by the notification."""
        listener = await self._listener()
        deadline = time.monotonic() + timeout
        with listener.waiting(self.channels.queue, queue) as event:
            pool = await self._pool()
            if await pool.fetchval(self._q.runnable, queue):
                return
            with anyio.move_on_after(deadline - time.monotonic()):
                await event.wait()
