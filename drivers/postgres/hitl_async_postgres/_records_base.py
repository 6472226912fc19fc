"""`RecordsBase`: what the PostgreSQL record store's parts share - its pool (created on first use
with the `srv_*` tables and the exclusive-insert function), the LISTEN connection that wakes
readers of other processes' events, and the last document text seen per run and thread."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import asyncpg

from hitl_async.server.records import RecordStore
from hitl_async_postgres._migrate import DEFAULT_SCHEMA
from hitl_async_postgres._schema import quote_schema

__all__ = ["RecordsBase", "dump_doc", "load_doc"]


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


def dump_doc(doc: dict[str, Any]) -> str:
    """A record document as the compact JSON text stored (and compared) in `doc`."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def load_doc(value: Any) -> dict[str, Any]:
    """A stored document (text, or already decoded by asyncpg) as a dict."""
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


class RecordsBase(RecordStore):
    """The connections and the shared state of `PostgresRecordStore`, in `schema` of the database
    at `dsn`."""

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
