"""The run queue on Redis (`RunQueueStore`).

The claim decision is a Lua script over `P:runs:Q` (first runnable in (created_at,
id) order; a thread is busy while one of `P:{T}:runs` is running with a live claim), and the
stream `P:q:Q` only wakes waiting workers. A Streams consumer group was not used for delivery
because its model differs from the protocol's: XREADGROUP hands out entries in stream order to
one consumer each and cannot skip an entry whose thread is busy and come back to it later (it
stays pending to whoever read it); XAUTOCLAIM takes over by idle time since delivery, not by the
claim expiry `renew_claim` extends on the store clock; and giving a request back (`queued`) or
cancelling a queued one would need re-adding or deleting entries in step with the PEL. One
script over a zset gives exactly the protocol's semantics, and Redis runs scripts one at a
time, so concurrent claimers never get the same request. `wait_for_work` first asks (one
script) whether a request is runnable, and otherwise blocks on the stream from the id it saw
(XREAD BLOCK never misses an entry added after that check, unlike pub/sub), at most until the
earliest live claim in the queue expires. `enqueue` and `finish_request` XADD wake-ups.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from hitl_async.checkpoint.base import RunRequest
from hitl_async.checkpoint.capabilities import RunQuery, RunQueueStore, run_order
from hitl_async.checkpoint.ids import check_id
from hitl_async_redis import _scripts
from hitl_async_redis._codec import decode_request, hexid, lex_member, ms, request_fields, text
from hitl_async_redis._connection import RedisConnection
from hitl_async_redis._keys import glob_escape

__all__ = ["RedisRunQueue"]


class RedisRunQueue(RedisConnection, RunQueueStore):
    """Requests in hashes, pending ones in a zset per queue, wake-ups on a stream per queue."""

    def _run_key(self, request_id: str) -> str:
        return f"{self.prefix}:run:{hexid(request_id)}"

    def _queue_keys(self, queue: str) -> tuple[str, str]:
        """The queue's pending zset and its wake-up stream."""
        qhex = hexid(queue)
        return f"{self.prefix}:runs:{qhex}", f"{self.prefix}:q:{qhex}"

    async def enqueue(self, request: RunRequest) -> None:
        """Store the request and wake the queue's waiters, atomically; `ValueError` if the id
        exists."""
        check_id("thread id", request.thread_id)
        zset, stream = self._queue_keys(request.queue)
        keys = [
            self._run_key(request.id),
            zset,
            stream,
            f"{self._base(request.thread_id)}:runs",
        ]
        args = [
            self.prefix,
            hexid(request.id),
            lex_member(request.created_at, request.id),
            text(request.status),
            hexid(request.queue),
            *request_fields(request),
        ]
        if not await self._run(_scripts.ENQUEUE, keys, args):
            raise ValueError(f"run request {request.id!r} already exists")

    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        """Claim the oldest runnable request of `queue` (one script: never twice)."""
        zset, _ = self._queue_keys(queue)
        reply = await self._run(_scripts.CLAIM, [zset], [self.prefix, text(owner), ms(ttl)])
        return decode_request(reply) if reply else None

    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        """Extend `owner`'s claim by `ttl` seconds from now (store clock)."""
        args = [text(owner), ms(ttl)]
        return bool(await self._run(_scripts.RENEW_CLAIM, [self._run_key(request_id)], args))

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
        args = [
            self.prefix,
            hexid(request_id),
            b"0" if owner is None else b"1",
            text(owner or ""),
            text(status),
            b"0" if result is None else b"1",
            bytes(result or b""),
            b"0" if error is None else b"1",
            text(error or ""),
        ]
        return bool(await self._run(_scripts.FINISH, [self._run_key(request_id)], args))

    async def get_request(self, request_id: str) -> RunRequest | None:
        """The request's hash (one HGETALL), or None."""
        client = await self.get_client()
        try:
            execute = cast(Callable[..., Awaitable[Any]], client.execute_command)  # (untyped)
            flat = await execute("HGETALL", self._run_key(request_id))
        except Exception as exc:
            mapped = self._unavailable(exc)
            if mapped is None:
                raise
            raise mapped from exc
        if isinstance(flat, dict):
            flat = [x for pair in flat.items() for x in pair]
        return decode_request(flat) if flat else None

    async def list_requests(self, query: RunQuery = RunQuery()) -> list[RunRequest]:  # noqa: B008
        """A page of requests, newest first; damaged hashes listed with `damaged` set.

        Redis keeps no index of finished requests, so this scans the prefix's request keys
        (SCAN, never KEYS) and reads them in pipelined batches: an operator's view, whose cost
        grows with the number of requests stored.
        """
        if query.limit <= 0:
            return []
        client = await self.get_client()
        found: list[RunRequest] = []

        async def read(keys: list[bytes]) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                replies = await pipe.execute()
            for reply in replies:
                flat = reply
                if isinstance(reply, dict):
                    flat = [x for pair in reply.items() for x in pair]
                if flat:
                    request = decode_request(flat, lenient=True)
                    if query.matches(request):
                        found.append(request)

        try:
            batch: list[bytes] = []
            pattern = glob_escape(self.prefix) + ":run:*"
            async for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    await read(batch)
                    batch = []
            if batch:
                await read(batch)
        except Exception as exc:
            mapped = self._unavailable(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return sorted(found, key=run_order, reverse=True)[: query.limit]

    async def wait_for_work(self, queue: str, timeout: float) -> None:
        """Return at once if a request is runnable; else block on the queue's stream (XREAD
        BLOCK from the last id seen) until a wake-up, a live claim expires, or `timeout`."""
        if timeout <= 0:
            return
        zset, stream = self._queue_keys(queue)
        ready, seen, wake_ms = await self._run(_scripts.WORK_STATE, [zset, stream], [self.prefix])
        if ready:
            return
        wait = timeout if int(wake_ms) < 0 else min(timeout, int(wake_ms) / 1000 + 0.001)
        notifier = await self._notifier()
        await notifier.wait_for_stream(stream, seen, wait)
