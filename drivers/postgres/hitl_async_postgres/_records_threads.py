"""`RecordThreads`: the assistants and threads of `PostgresRecordStore` (tables `srv_assistants`
and `srv_threads`); updates are optimistic compare-and-sets on the document text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hitl_async.server.records import AssistantRecord, ThreadQuery, ThreadRecord
from hitl_async_postgres._records_base import RecordsBase, dump_doc, load_doc

__all__ = ["RecordThreads"]


class RecordThreads(RecordsBase):
    """Assistants and threads."""

    # -- assistants ------------------------------------------------------------------------------

    async def put_assistant(self, record: AssistantRecord, *, if_absent: bool = False) -> bool:
        action = "NOTHING" if if_absent else "UPDATE SET doc = EXCLUDED.doc"
        pool = await self._get_pool()
        done = await pool.fetchval(
            f"INSERT INTO {self.s}.srv_assistants (assistant_id, doc) VALUES ($1, $2::jsonb) "
            f"ON CONFLICT (assistant_id) DO {action} RETURNING 1",
            record.assistant_id,
            dump_doc(record.to_json()),
        )
        return done is not None

    async def get_assistant(self, assistant_id: str) -> AssistantRecord | None:
        pool = await self._get_pool()
        doc = await pool.fetchval(
            f"SELECT doc FROM {self.s}.srv_assistants WHERE assistant_id = $1", assistant_id
        )
        return AssistantRecord.from_json(load_doc(doc)) if doc is not None else None

    async def list_assistants(self) -> list[AssistantRecord]:
        pool = await self._get_pool()
        rows = await pool.fetch(f"SELECT doc FROM {self.s}.srv_assistants")
        return [AssistantRecord.from_json(load_doc(r[0])) for r in rows]

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
            text := dump_doc(record.to_json()),
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
        return ThreadRecord.from_json(load_doc(doc))

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
            new = change(ThreadRecord.from_json(load_doc(doc)))
            text = dump_doc(new.to_json())
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
        return [ThreadRecord.from_json(load_doc(r[0])) for r in rows]

    def _where(self, query: ThreadQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = ["TRUE"]
        args: list[Any] = []
        if query.status is not None:
            args.append(query.status)
            clauses.append(f"status = ${len(args)}")
        if query.metadata:
            args.append(dump_doc(dict(query.metadata)))
            clauses.append(f"doc -> 'metadata' @> ${len(args)}::jsonb")
        if query.values:
            args.append(dump_doc(dict(query.values)))
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
