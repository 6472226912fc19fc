"""`RecordRuns`: the runs of `PostgresRecordStore` (table `srv_runs`) and their event logs
(`srv_events`), appended with a NOTIFY in the same statement."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hitl_async.server.records import ACTIVE_RUN_STATUSES, RunRecord, StreamEvent
from hitl_async_postgres._records_base import RecordsBase, dump_doc, load_doc

__all__ = ["RecordRuns"]

_ACTIVE = sorted(ACTIVE_RUN_STATUSES)


class RecordRuns(RecordsBase):
    """Runs and their events."""

    # -- runs ------------------------------------------------------------------------------------

    async def insert_run(self, record: RunRecord, *, exclusive: bool) -> bool:
        pool = await self._get_pool()
        done = await pool.fetchval(
            f"SELECT {self.s}.srv_insert_run($1, $2, $3, $4, $5::jsonb, $6, $7)",
            record.run_id,
            record.thread_id,
            record.status,
            record.created_at,
            text := dump_doc(record.to_json()),
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
        return RunRecord.from_json(load_doc(doc))

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
        return [RunRecord.from_json(load_doc(r[0])) for r in rows]

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT doc FROM {self.s}.srv_runs WHERE thread_id = $1 "
            "AND status = ANY($2::text[]) ORDER BY created_at, run_id",
            thread_id,
            _ACTIVE,
        )
        return [RunRecord.from_json(load_doc(r[0])) for r in rows]

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
            new = change(RunRecord.from_json(load_doc(doc)))
            text = dump_doc(new.to_json())
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
