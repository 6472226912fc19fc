"""`PostgresRecordStore`: `hitl serve`'s records (threads, runs, assistants, run event logs) in
tables `srv_*` of the checkpoint schema, and new events announced with NOTIFY.

Appending an event inserts it and calls `pg_notify` in one statement; every process LISTENs on
the schema's channel (one connection each) and wakes its readers of that run, who then read the
table from the last id they saw, so an event missed while disconnected is still read. Exclusive
run inserts run one function that holds a transaction-scoped advisory lock on the thread while
it checks and inserts; read-modify-writes are optimistic (read, then update only if the
document is unchanged, else again): one round trip per statement, no explicit transactions. The
store remembers the last document text it read or wrote per run and thread, and an update first
tries its compare-and-set against that, so the usual update (of a record this process just
read or wrote) is one round trip; when another process changed it meanwhile, it reads again.

New threads commit synchronously (durable once acknowledged); runs, status updates and event
appends commit asynchronously (`synchronous_commit = off`: no fsync wait). PostgreSQL writes
its WAL in order, so the next synchronous commit makes them durable too: a new run's, that of
its queue entry, which the server enqueues before it answers; the others', the queue's when a
run ends; a server crash can lose only the last fraction of a second of
them, which the run's queue entry and checkpoints (always synchronous) let a reader recover:
a run whose end event was lost is read as ended from its record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from hitl_async.server.records import (
    ACTIVE_RUN_STATUSES,
    AssistantRecord,
    RecordStore,
    RunRecord,
    StreamEvent,
    ThreadQuery,
    ThreadRecord,
)
from hitl_async_postgres._migrate import DEFAULT_SCHEMA
from hitl_async_postgres._schema import quote_schema
from hitl_async_postgres._url import split_url

__all__ = ["PostgresRecordStore", "records_from_url"]

_ACTIVE = sorted(ACTIVE_RUN_STATUSES)


def _ddl(s: str) -> str:
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.srv_assistants (assistant_id text PRIMARY KEY, doc jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.srv_threads (
    thread_id text PRIMARY KEY, status text NOT NULL, created_at text NOT NULL,
    updated_at text NOT NULL, doc jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS srv_threads_status ON {s}.srv_threads (status, created_at);
CREATE INDEX IF NOT EXISTS srv_threads_metadata ON {s}.srv_threads
    USING gin ((doc -> 'metadata') jsonb_path_ops);
CREATE TABLE IF NOT EXISTS {s}.srv_runs (
    run_id text PRIMARY KEY, thread_id text NOT NULL, status text NOT NULL,
    created_at text NOT NULL, doc jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS srv_runs_thread ON {s}.srv_runs (thread_id, created_at);
CREATE TABLE IF NOT EXISTS {s}.srv_events (
    id bigserial PRIMARY KEY, run_id text NOT NULL, event text NOT NULL, data text NOT NULL);
CREATE INDEX IF NOT EXISTS srv_events_run ON {s}.srv_events (run_id, id);
CREATE OR REPLACE FUNCTION {s}.srv_insert_run(
    p_run text, p_thread text, p_status text, p_created text, p_doc jsonb, p_exclusive boolean,
    p_lock text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_lock));
    IF p_exclusive AND EXISTS (
        SELECT 1 FROM {s}.srv_runs
        WHERE thread_id = p_thread AND status IN ('pending', 'running')
    ) THEN
        RETURN false;
    END IF;
    INSERT INTO {s}.srv_runs (run_id, thread_id, status, created_at, doc)
    VALUES (p_run, p_thread, p_status, p_created, p_doc);
    RETURN true;
END $$;
"""


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _load(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str | bytes) else value
    return dict(loaded)


_KNOWN_MAX = 20_000


class _NoResetConnection(asyncpg.Connection):
    """A pool connection released without asyncpg's reset query (`RESET ALL`, `UNLISTEN *`,
    ...): a round trip after every statement, for session state this store never leaves behind
    (its settings are transaction-local, LISTEN runs on a connection of its own, the DDL's
    session advisory lock is released in `finally`). Open transactions are still rolled back on
    release."""

    def get_reset_query(self) -> str:
        return ""


class PostgresRecordStore(RecordStore):
    """Server records in `schema` of the database at `dsn`."""

    poll_interval = 5.0

    def __init__(self, dsn: str, *, schema: str = DEFAULT_SCHEMA, max_size: int = 10) -> None:
        super().__init__()
        self.dsn = dsn
        self.schema = schema
        self.s = quote_schema(schema)
        digest = hashlib.sha1(schema.encode()).hexdigest()[:16]
        self.channel = f"hitl_srv_{digest}"
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._opening: asyncio.Lock | None = None
        self._known: dict[str, str] = {}
        """The last document text read or written per run ("r:id") and thread ("t:id")."""

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self.max_size,
                    server_settings={"synchronous_commit": "off"},
                    connection_class=_NoResetConnection,
                )
                async with pool.acquire() as conn:
                    await conn.execute("SELECT pg_advisory_lock(hashtext('hitl_srv_ddl'))")
                    try:
                        await conn.execute(_ddl(self.s))
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock(hashtext('hitl_srv_ddl'))")
                listener = await asyncpg.connect(self.dsn)
                await listener.add_listener(self.channel, self._on_notify)
                self._listener = listener
                self._pool = pool
        assert self._pool is not None
        return self._pool

    def _remember(self, key: str, doc: str) -> None:
        if len(self._known) >= _KNOWN_MAX:
            self._known.clear()
        self._known[key] = doc

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        self.waiters.notify(str(payload))

    async def setup(self) -> None:
        await self._get_pool()

    async def aclose(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        self.waiters.notify_all()

    async def destroy(self) -> None:
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            for table in ("srv_events", "srv_runs", "srv_threads", "srv_assistants"):
                await conn.execute(f"DELETE FROM {self.s}.{table}")

    # -- assistants ------------------------------------------------------------------------------

    async def put_assistant(self, record: AssistantRecord, *, if_absent: bool = False) -> bool:
        action = "NOTHING" if if_absent else "UPDATE SET doc = EXCLUDED.doc"
        pool = await self._get_pool()
        done = await pool.fetchval(
            f"INSERT INTO {self.s}.srv_assistants (assistant_id, doc) VALUES ($1, $2::jsonb) "
            f"ON CONFLICT (assistant_id) DO {action} RETURNING 1",
            record.assistant_id,
            _dump(record.to_json()),
        )
        return done is not None

    async def get_assistant(self, assistant_id: str) -> AssistantRecord | None:
        pool = await self._get_pool()
        doc = await pool.fetchval(
            f"SELECT doc FROM {self.s}.srv_assistants WHERE assistant_id = $1", assistant_id
        )
        return AssistantRecord.from_json(_load(doc)) if doc is not None else None

    async def list_assistants(self) -> list[AssistantRecord]:
        pool = await self._get_pool()
        rows = await pool.fetch(f"SELECT doc FROM {self.s}.srv_assistants")
        return [AssistantRecord.from_json(_load(r[0])) for r in rows]

    # -- threads ---------------------------------------------------------------------------------

    async def insert_thread(self, record: ThreadRecord) -> bool:
        pool = await self._get_pool()
        done = await pool.fetchval(
            "WITH durable AS (SELECT set_config('synchronous_commit', 'on', true)) "
            f"INSERT INTO {self.s}.srv_threads (thread_id, status, created_at, updated_at, doc) "
            "SELECT $1, $2, $3, $4, $5::jsonb FROM durable "
            "ON CONFLICT (thread_id) DO NOTHING RETURNING 1",
            record.thread_id,
            record.status,
            record.created_at,
            record.updated_at,
            text := _dump(record.to_json()),
        )
        if done is not None:
            self._remember(f"t:{record.thread_id}", text)
        return done is not None

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        pool = await self._get_pool()
        doc = await pool.fetchval(
            f"SELECT doc::text FROM {self.s}.srv_threads WHERE thread_id = $1", thread_id
        )
        if doc is None:
            return None
        self._remember(f"t:{thread_id}", doc)
        return ThreadRecord.from_json(_load(doc))

    async def update_thread(
        self, thread_id: str, change: Callable[[ThreadRecord], ThreadRecord]
    ) -> ThreadRecord | None:
        pool = await self._get_pool()
        key = f"t:{thread_id}"
        doc = self._known.get(key)
        while True:  # optimistic: write only if nobody changed the document meanwhile
            if doc is None:
                doc = await pool.fetchval(
                    f"SELECT doc::text FROM {self.s}.srv_threads WHERE thread_id = $1", thread_id
                )
                if doc is None:
                    self._known.pop(key, None)
                    return None
            new = change(ThreadRecord.from_json(_load(doc)))
            text = _dump(new.to_json())
            done = await pool.fetchval(
                f"UPDATE {self.s}.srv_threads SET status = $2, updated_at = $3, doc = $4::jsonb "
                "WHERE thread_id = $1 AND doc = $5::jsonb RETURNING 1",
                thread_id,
                new.status,
                new.updated_at,
                text,
                doc,
            )
            if done is not None:
                self._remember(key, text)
                return new
            doc = None  # changed by another process (or deleted): read it again

    async def delete_thread(self, thread_id: str, *, keep_runs: bool = False) -> bool:
        pool = await self._get_pool()
        self._known.pop(f"t:{thread_id}", None)
        async with pool.acquire() as conn, conn.transaction():
            existed = await conn.fetchval(
                f"DELETE FROM {self.s}.srv_threads WHERE thread_id = $1 RETURNING 1", thread_id
            )
            if not keep_runs:
                await conn.execute(
                    f"DELETE FROM {self.s}.srv_events WHERE run_id IN "
                    f"(SELECT run_id FROM {self.s}.srv_runs WHERE thread_id = $1)",
                    thread_id,
                )
                await conn.execute(f"DELETE FROM {self.s}.srv_runs WHERE thread_id = $1", thread_id)
            return existed is not None

    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]:
        where, args = self._where(query)
        sort = {"updated_at": "updated_at", "thread_id": "thread_id"}.get(
            query.sort_by, "created_at"
        )
        order = "ASC" if query.sort_order == "asc" else "DESC"
        args += [query.limit, query.offset]
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT doc FROM {self.s}.srv_threads WHERE {where} "
            f"ORDER BY {sort} {order}, thread_id {order} "
            f"LIMIT ${len(args) - 1} OFFSET ${len(args)}",
            *args,
        )
        return [ThreadRecord.from_json(_load(r[0])) for r in rows]

    def _where(self, query: ThreadQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = ["TRUE"]
        args: list[Any] = []
        if query.status is not None:
            args.append(query.status)
            clauses.append(f"status = ${len(args)}")
        if query.metadata:
            args.append(_dump(dict(query.metadata)))
            clauses.append(f"doc -> 'metadata' @> ${len(args)}::jsonb")
        if query.values:
            args.append(_dump(dict(query.values)))
            clauses.append(f"doc -> 'values' @> ${len(args)}::jsonb")
        if query.ids is not None:
            args.append(list(query.ids))
            clauses.append(f"thread_id = ANY(${len(args)}::text[])")
        return " AND ".join(clauses), args

    async def count_threads(self, query: ThreadQuery) -> int:
        where, args = self._where(query)
        pool = await self._get_pool()
        count = await pool.fetchval(
            f"SELECT count(*) FROM {self.s}.srv_threads WHERE {where}", *args
        )
        return int(count)

    # -- runs ------------------------------------------------------------------------------------

    async def insert_run(self, record: RunRecord, *, exclusive: bool) -> bool:
        pool = await self._get_pool()
        done = await pool.fetchval(
            f"SELECT {self.s}.srv_insert_run($1, $2, $3, $4, $5::jsonb, $6, $7)",
            record.run_id,
            record.thread_id,
            record.status,
            record.created_at,
            text := _dump(record.to_json()),
            exclusive,
            f"{self.schema}:{record.thread_id}",
        )
        if done:
            self._remember(f"r:{record.run_id}", text)
        return bool(done)

    async def get_run(self, run_id: str) -> RunRecord | None:
        pool = await self._get_pool()
        doc = await pool.fetchval(
            f"SELECT doc::text FROM {self.s}.srv_runs WHERE run_id = $1", run_id
        )
        if doc is None:
            return None
        self._remember(f"r:{run_id}", doc)
        return RunRecord.from_json(_load(doc))

    async def list_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[RunRecord]:
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT doc FROM {self.s}.srv_runs WHERE thread_id = $1 "
            "AND ($2::text IS NULL OR status = $2) "
            "ORDER BY created_at DESC, run_id DESC LIMIT $3 OFFSET $4",
            thread_id,
            status,
            limit,
            offset,
        )
        return [RunRecord.from_json(_load(r[0])) for r in rows]

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT doc FROM {self.s}.srv_runs WHERE thread_id = $1 "
            "AND status = ANY($2::text[]) ORDER BY created_at, run_id",
            thread_id,
            _ACTIVE,
        )
        return [RunRecord.from_json(_load(r[0])) for r in rows]

    async def update_run(
        self, run_id: str, change: Callable[[RunRecord], RunRecord]
    ) -> RunRecord | None:
        pool = await self._get_pool()
        key = f"r:{run_id}"
        doc = self._known.get(key)
        while True:  # optimistic, as update_thread
            if doc is None:
                doc = await pool.fetchval(
                    f"SELECT doc::text FROM {self.s}.srv_runs WHERE run_id = $1", run_id
                )
                if doc is None:
                    self._known.pop(key, None)
                    return None
            new = change(RunRecord.from_json(_load(doc)))
            text = _dump(new.to_json())
            done = await pool.fetchval(
                f"UPDATE {self.s}.srv_runs SET status = $2, doc = $3::jsonb "
                "WHERE run_id = $1 AND doc = $4::jsonb RETURNING 1",
                run_id,
                new.status,
                text,
                doc,
            )
            if done is not None:
                self._remember(key, text)
                return new
            doc = None

    async def delete_run(self, run_id: str) -> bool:
        pool = await self._get_pool()
        self._known.pop(f"r:{run_id}", None)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"DELETE FROM {self.s}.srv_events WHERE run_id = $1", run_id)
            done = await conn.fetchval(
                f"DELETE FROM {self.s}.srv_runs WHERE run_id = $1 RETURNING 1", run_id
            )
            return done is not None

    # -- events ----------------------------------------------------------------------------------

    async def append_event(self, run_id: str, event: str, data: str) -> str:
        pool = await self._get_pool()
        event_id = await pool.fetchval(
            f"WITH added AS (INSERT INTO {self.s}.srv_events (run_id, event, data) "
            "VALUES ($1, $2, $3) RETURNING id) "
            "SELECT added.id FROM added, pg_notify($4, $1)",
            run_id,
            event,
            data,
            self.channel,
        )
        self.waiters.notify(run_id)
        return str(event_id)

    async def append_events(self, run_id: str, events: Sequence[tuple[str, str]]) -> list[str]:
        if not events:
            return []
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"WITH added AS (INSERT INTO {self.s}.srv_events (run_id, event, data) "
            "SELECT $1, e, d FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(e, d, n) "
            "ORDER BY n RETURNING id) "
            "SELECT added.id FROM added, pg_notify($4, $1) ORDER BY added.id",
            run_id,
            [e for e, _ in events],
            [d for _, d in events],
            self.channel,
        )
        self.waiters.notify(run_id)
        return [str(r[0]) for r in rows]

    async def signal(self, key: str) -> None:
        self.waiters.notify(key)  # this process's waiters at once, then the others'
        pool = await self._get_pool()
        await pool.execute("SELECT pg_notify($1, $2)", self.channel, key)

    async def read_events(
        self, run_id: str, after: str | None = None, limit: int = 1000
    ) -> list[StreamEvent]:
        try:
            cut = int(after) if after is not None else 0
        except ValueError:
            cut = 0
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT id, event, data FROM {self.s}.srv_events WHERE run_id = $1 AND id > $2 "
            "ORDER BY id LIMIT $3",
            run_id,
            cut,
            limit,
        )
        return [StreamEvent(str(r[0]), r[1], r[2]) for r in rows]


def records_from_url(url: str, **options: Any) -> PostgresRecordStore:
    """The `hitl_async.records` entry point: records in the schema a `postgresql:` URL (and its
    `schema` option) names, as the checkpoint driver uses it."""
    dsn, found = split_url(url)
    merged = {**found, **options}
    return PostgresRecordStore(dsn, schema=str(merged.get("schema", DEFAULT_SCHEMA)))
