"""`RedisRecordStore`: `hitl serve`'s records (threads, runs, assistants, run event logs) under
the driver's key prefix, and new events announced with PUBLISH.

Key layout (`P` = the `prefix` option, default "hitl"): `P:srv:a:{id}` an assistant,
`P:srv:t:{id}` a thread and `P:srv:threads` (sorted set by creation) the threads,
`P:srv:r:{id}` a run, `P:srv:tr:{thread}` (sorted set) a thread's runs, `P:srv:act:{thread}`
(set) its active runs, `P:srv:e:{run}` (a stream) a run's event log; events are announced on
the channel `P:srv:events` with the run id. Read-modify-writes use WATCH/MULTI and retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import WatchError

from hitl_async.server.records import (
    ACTIVE_RUN_STATUSES,
    AssistantRecord,
    RecordStore,
    RunRecord,
    StreamEvent,
    ThreadQuery,
    ThreadRecord,
    search_in_memory,
)

__all__ = ["RedisRecordStore", "records_from_url"]

T = TypeVar("T")
_EVENT_TTL = 7 * 24 * 3600
_STREAM_ID = re.compile(r"\d+-\d+")


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _score(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


class RedisRecordStore(RecordStore):
    """Server records in the Redis database at `url`, under `prefix`."""

    poll_interval = 5.0

    def __init__(self, url: str, *, prefix: str = "hitl", max_connections: int = 50) -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self.p = f"{prefix}:srv"
        self.channel = f"{self.p}:events"
        self._client: Any = None
        self._listening: asyncio.Task[None] | None = None

    @property
    def client(self) -> Any:
        """The redis-py client (decoding replies to str), typed loosely: its stubs type every
        reply as bytes | str."""
        if self._client is None:
            self._client = Redis.from_url(
                self.url, decode_responses=True, max_connections=self.max_connections
            )
        return self._client

    async def setup(self) -> None:
        if self._listening is None:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(self.channel)
            self._listening = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is not None and message.get("type") == "message":
                    self.waiters.notify(str(message["data"]))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def aclose(self) -> None:
        if self._listening is not None:
            task, self._listening = self._listening, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        self.waiters.notify_all()

    async def destroy(self) -> None:
        keys = [k async for k in self.client.scan_iter(match=f"{self.p}:*", count=1000)]
        for start in range(0, len(keys), 500):
            await self.client.unlink(*keys[start : start + 500])

    async def _atomic(self, key: str, fn: Callable[[Any, str | None], T]) -> T:
        """WATCH `key`, call `fn(pipe, current)` (which queues writes after `pipe.multi()`),
        EXEC; retried when another client changed the key meanwhile."""
        while True:
            async with self.client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    current = await pipe.get(key)
                    pipe.multi()
                    result = fn(pipe, current)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue

    # -- assistants ------------------------------------------------------------------------------

    async def put_assistant(self, record: AssistantRecord, *, if_absent: bool = False) -> bool:
        key = f"{self.p}:a:{record.assistant_id}"
        done = await self.client.set(key, _dump(record.to_json()), nx=if_absent)
        if done:
            await self.client.sadd(f"{self.p}:assistants", record.assistant_id)
        return bool(done)

    async def get_assistant(self, assistant_id: str) -> AssistantRecord | None:
        doc = await self.client.get(f"{self.p}:a:{assistant_id}")
        return AssistantRecord.from_json(json.loads(doc)) if doc else None

    async def list_assistants(self) -> list[AssistantRecord]:
        ids = sorted(await self.client.smembers(f"{self.p}:assistants"))
        if not ids:
            return []
        docs = await self.client.mget([f"{self.p}:a:{i}" for i in ids])
        return [AssistantRecord.from_json(json.loads(d)) for d in docs if d]

    # -- threads ---------------------------------------------------------------------------------

    async def insert_thread(self, record: ThreadRecord) -> bool:
        done = await self.client.set(
            f"{self.p}:t:{record.thread_id}", _dump(record.to_json()), nx=True
        )
        if done:
            await self.client.zadd(
                f"{self.p}:threads", {record.thread_id: _score(record.created_at)}
            )
        return bool(done)

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        doc = await self.client.get(f"{self.p}:t:{thread_id}")
        return ThreadRecord.from_json(json.loads(doc)) if doc else None

    async def update_thread(
        self, thread_id: str, change: Callable[[ThreadRecord], ThreadRecord]
    ) -> ThreadRecord | None:
        key = f"{self.p}:t:{thread_id}"

        def write(pipe: Any, current: str | None) -> ThreadRecord | None:
            if current is None:
                return None
            new = change(ThreadRecord.from_json(json.loads(current)))
            pipe.set(key, _dump(new.to_json()))
            return new

        return await self._atomic(key, write)

    async def delete_thread(self, thread_id: str, *, keep_runs: bool = False) -> bool:
        existed = await self.client.delete(f"{self.p}:t:{thread_id}")
        await self.client.zrem(f"{self.p}:threads", thread_id)
        if not keep_runs:
            run_ids = await self.client.zrange(f"{self.p}:tr:{thread_id}", 0, -1)
            keys = [f"{self.p}:r:{r}" for r in run_ids] + [f"{self.p}:e:{r}" for r in run_ids]
            keys += [f"{self.p}:tr:{thread_id}", f"{self.p}:act:{thread_id}"]
            await self.client.unlink(*keys)
        return bool(existed)

    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]:
        ids = (
            query.ids
            if query.ids is not None
            else await self.client.zrange(f"{self.p}:threads", 0, -1)
        )
        found: list[ThreadRecord] = []
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            docs = await self.client.mget([f"{self.p}:t:{i}" for i in chunk])
            found += [ThreadRecord.from_json(json.loads(d)) for d in docs if d]
        return search_in_memory(found, query)

    # -- runs ------------------------------------------------------------------------------------

    async def insert_run(self, record: RunRecord, *, exclusive: bool) -> bool:
        active = f"{self.p}:act:{record.thread_id}"
        while True:
            async with self.client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(active)
                    if exclusive and await pipe.scard(active):
                        return False
                    pipe.multi()
                    pipe.set(f"{self.p}:r:{record.run_id}", _dump(record.to_json()))
                    pipe.zadd(
                        f"{self.p}:tr:{record.thread_id}",
                        {record.run_id: _score(record.created_at)},
                    )
                    if record.status in ACTIVE_RUN_STATUSES:
                        pipe.sadd(active, record.run_id)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def get_run(self, run_id: str) -> RunRecord | None:
        doc = await self.client.get(f"{self.p}:r:{run_id}")
        return RunRecord.from_json(json.loads(doc)) if doc else None

    async def list_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[RunRecord]:
        ids = await self.client.zrevrange(f"{self.p}:tr:{thread_id}", 0, -1)
        if not ids:
            return []
        docs = await self.client.mget([f"{self.p}:r:{i}" for i in ids])
        runs = [RunRecord.from_json(json.loads(d)) for d in docs if d]
        runs = [r for r in runs if status is None or r.status == status]
        runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return runs[offset : offset + limit]

    async def update_run(
        self, run_id: str, change: Callable[[RunRecord], RunRecord]
    ) -> RunRecord | None:
        key = f"{self.p}:r:{run_id}"

        def write(pipe: Any, current: str | None) -> RunRecord | None:
            if current is None:
                return None
            new = change(RunRecord.from_json(json.loads(current)))
            pipe.set(key, _dump(new.to_json()))
            active = f"{self.p}:act:{new.thread_id}"
            if new.status in ACTIVE_RUN_STATUSES:
                pipe.sadd(active, run_id)
            else:
                pipe.srem(active, run_id)
            return new

        return await self._atomic(key, write)

    async def delete_run(self, run_id: str) -> bool:
        run = await self.get_run(run_id)
        if run is None:
            return False
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.unlink(f"{self.p}:r:{run_id}", f"{self.p}:e:{run_id}")
            pipe.zrem(f"{self.p}:tr:{run.thread_id}", run_id)
            pipe.srem(f"{self.p}:act:{run.thread_id}", run_id)
            await pipe.execute()
        return True

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        ids = sorted(await self.client.smembers(f"{self.p}:act:{thread_id}"))
        if not ids:
            return []
        docs = await self.client.mget([f"{self.p}:r:{i}" for i in ids])
        runs = [RunRecord.from_json(json.loads(d)) for d in docs if d]
        runs = [r for r in runs if r.status in ACTIVE_RUN_STATUSES]
        runs.sort(key=lambda r: (r.created_at, r.run_id))
        return runs

    # -- events ----------------------------------------------------------------------------------

    async def append_event(self, run_id: str, event: str, data: str) -> str:
        key = f"{self.p}:e:{run_id}"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"e": event, "d": data})
            pipe.expire(key, _EVENT_TTL)
            pipe.publish(self.channel, run_id)
            event_id, _, _ = await pipe.execute()
        self.waiters.notify(run_id)
        return str(event_id)

    async def append_events(self, run_id: str, events: Sequence[tuple[str, str]]) -> list[str]:
        if not events:
            return []
        key = f"{self.p}:e:{run_id}"
        async with self.client.pipeline(transaction=True) as pipe:
            for event, data in events:
                pipe.xadd(key, {"e": event, "d": data})
            pipe.expire(key, _EVENT_TTL)
            pipe.publish(self.channel, run_id)
            replies = await pipe.execute()
        self.waiters.notify(run_id)
        return [str(i) for i in replies[: len(events)]]

    async def signal(self, key: str) -> None:
        self.waiters.notify(key)  # this process's waiters at once, then the others'
        await self.client.publish(self.channel, key)

    async def read_events(
        self, run_id: str, after: str | None = None, limit: int = 1000
    ) -> list[StreamEvent]:
        start = f"({after}" if after and _STREAM_ID.fullmatch(after) else "-"
        rows = await self.client.xrange(f"{self.p}:e:{run_id}", start, "+", count=limit)
        return [StreamEvent(str(i), f.get("e", ""), f.get("d", "")) for i, f in rows]


def records_from_url(url: str, **options: Any) -> RedisRecordStore:
    """The `hitl_async.records` entry point: records under the prefix a `redis:` URL (and its
    `prefix` option) names, as the checkpoint driver uses it."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    prefix = str(options.get("prefix", query.pop("prefix", "hitl")))
    for name in (
        "ttl",
        "max_connections",
        "pool_timeout",
        "group_commit",
        "max_batch",
        "batches_in_flight",
    ):
        query.pop(name, None)
    clean = urlunsplit(parts._replace(query=urlencode(query)))
    return RedisRecordStore(clean, prefix=prefix)
