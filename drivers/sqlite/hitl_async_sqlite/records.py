"""`SqliteRecordStore`: `hitl serve`'s records (threads, runs, assistants, run event logs) in
tables `srv_*` of a database file beside the checkpoints' (`app.db` -> `app.server.db`): a
file of its own, so record writes never wait for the checkpoint writer's lock, nor it for them.

One connection per store, on a thread of its own that commits the writes queued together in
one `BEGIN IMMEDIATE` transaction (each in a savepoint), so read-modify-writes are atomic across
processes sharing the file and concurrent writes share a commit. SQLite
has no notifications: an append wakes readers of this process at once; for other processes'
writes, waiting readers poll every `poll_interval` seconds, each re-reading only when the
connection's `PRAGMA data_version` (one probe shared by all of them) says another connection
committed since their last look.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio.to_thread

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
from hitl_async_sqlite._records_thread import ConnectionThread
from hitl_async_sqlite.saver import MEMORY, parse_url

__all__ = ["SqliteRecordStore", "records_from_url", "records_path"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS srv_assistants (assistant_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS srv_threads (
    thread_id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS srv_runs (
    run_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS srv_runs_thread ON srv_runs (thread_id, created_at);
CREATE TABLE IF NOT EXISTS srv_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, event TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS srv_events_run ON srv_events (run_id, id);
"""
_ACTIVE = tuple(sorted(ACTIVE_RUN_STATUSES))


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class SqliteRecordStore(RecordStore):
    """Server records in the SQLite file at `path`."""

    poll_interval = 0.2

    def __init__(self, path: str, *, busy_timeout: int = 5000) -> None:
        super().__init__()
        self.path = path
        self.busy_timeout = busy_timeout
        self._thread = ConnectionThread(self._connect)
        self._version: tuple[float, int] | None = None
        """The last `PRAGMA data_version` probe: (monotonic time, value)."""
        self._probing = anyio.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout)}")
        if self.path != MEMORY:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._thread.run(fn, write=False)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` inside a write transaction (shared with the writes queued beside it)."""
        return await self._thread.run(fn, write=True)

    async def setup(self) -> None:
        await self._call(lambda conn: None)

    async def others_wrote(self, seen: object) -> tuple[bool, object]:
        """Whether another connection committed to the file since the probe `seen` (probes
        younger than half a poll interval are shared, so many waiters cost one query)."""
        async with self._probing:
            probe = self._version
            if probe is None or time.monotonic() - probe[0] >= self.poll_interval / 2:
                value = await self._call(
                    lambda c: int(c.execute("PRAGMA data_version").fetchone()[0])
                )
                probe = self._version = (time.monotonic(), value)
        return seen is None or seen != probe[1], probe[1]

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._thread.close)

    async def destroy(self) -> None:
        def drop(conn: sqlite3.Connection) -> None:
            for table in ("srv_assistants", "srv_threads", "srv_runs", "srv_events"):
                conn.execute(f"DELETE FROM {table}")

        await self._write(drop)

    # -- assistants ------------------------------------------------------------------------------

    async def put_assistant(self, record: AssistantRecord, *, if_absent: bool = False) -> bool:
        verb = "INSERT OR IGNORE" if if_absent else "INSERT OR REPLACE"

        def put(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                f"{verb} INTO srv_assistants (assistant_id, doc) VALUES (?, ?)",
                (record.assistant_id, _dump(record.to_json())),
            )
            return cur.rowcount > 0

        return await self._write(put)

    async def get_assistant(self, assistant_id: str) -> AssistantRecord | None:
        row = await self._call(
            lambda c: c.execute(
                "SELECT doc FROM srv_assistants WHERE assistant_id = ?", (assistant_id,)
            ).fetchone()
        )
        return AssistantRecord.from_json(json.loads(row[0])) if row else None

    async def list_assistants(self) -> list[AssistantRecord]:
        rows = await self._call(lambda c: c.execute("SELECT doc FROM srv_assistants").fetchall())
        return [AssistantRecord.from_json(json.loads(r[0])) for r in rows]

    # -- threads ---------------------------------------------------------------------------------

    async def insert_thread(self, record: ThreadRecord) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO srv_threads (thread_id, status, created_at, doc) "
                "VALUES (?, ?, ?, ?)",
                (record.thread_id, record.status, record.created_at, _dump(record.to_json())),
            )
            return cur.rowcount > 0

        return await self._write(insert)

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        row = await self._call(
            lambda c: c.execute(
                "SELECT doc FROM srv_threads WHERE thread_id = ?", (thread_id,)
            ).fetchone()
        )
        return ThreadRecord.from_json(json.loads(row[0])) if row else None

    async def update_thread(
        self, thread_id: str, change: Callable[[ThreadRecord], ThreadRecord]
    ) -> ThreadRecord | None:
        def update(conn: sqlite3.Connection) -> ThreadRecord | None:
            row = conn.execute(
                "SELECT doc FROM srv_threads WHERE thread_id = ?", (thread_id,)
            ).fetchone()
            if row is None:
                return None
            new = change(ThreadRecord.from_json(json.loads(row[0])))
            conn.execute(
                "UPDATE srv_threads SET status = ?, doc = ? WHERE thread_id = ?",
                (new.status, _dump(new.to_json()), thread_id),
            )
            return new

        return await self._write(update)

    async def delete_thread(self, thread_id: str, *, keep_runs: bool = False) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            existed = (
                conn.execute("DELETE FROM srv_threads WHERE thread_id = ?", (thread_id,)).rowcount
                > 0
            )
            if not keep_runs:
                conn.execute(
                    "DELETE FROM srv_events WHERE run_id IN "
                    "(SELECT run_id FROM srv_runs WHERE thread_id = ?)",
                    (thread_id,),
                )
                conn.execute("DELETE FROM srv_runs WHERE thread_id = ?", (thread_id,))
            return existed

        return await self._write(delete)

    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]:
        def rows(conn: sqlite3.Connection) -> list[Any]:
            if query.status is not None:
                return conn.execute(
                    "SELECT doc FROM srv_threads WHERE status = ?", (query.status,)
                ).fetchall()
            return conn.execute("SELECT doc FROM srv_threads").fetchall()

        found = [ThreadRecord.from_json(json.loads(r[0])) for r in await self._call(rows)]
        return search_in_memory(found, query)

    # -- runs ------------------------------------------------------------------------------------

    async def insert_run(self, record: RunRecord, *, exclusive: bool) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            if exclusive:
                busy = conn.execute(
                    "SELECT 1 FROM srv_runs WHERE thread_id = ? AND status IN (?, ?) LIMIT 1",
                    (record.thread_id, *_ACTIVE),
                ).fetchone()
                if busy:
                    return False
            conn.execute(
                "INSERT INTO srv_runs (run_id, thread_id, status, created_at, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record.run_id,
                    record.thread_id,
                    record.status,
                    record.created_at,
                    _dump(record.to_json()),
                ),
            )
            return True

        return await self._write(insert)

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self._call(
            lambda c: c.execute("SELECT doc FROM srv_runs WHERE run_id = ?", (run_id,)).fetchone()
        )
        return RunRecord.from_json(json.loads(row[0])) if row else None

    async def list_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[RunRecord]:
        def rows(conn: sqlite3.Connection) -> list[Any]:
            sql = "SELECT doc FROM srv_runs WHERE thread_id = ?"
            args: list[Any] = [thread_id]
            if status is not None:
                sql += " AND status = ?"
                args.append(status)
            sql += " ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?"
            return conn.execute(sql, (*args, limit, offset)).fetchall()

        return [RunRecord.from_json(json.loads(r[0])) for r in await self._call(rows)]

    async def update_run(
        self, run_id: str, change: Callable[[RunRecord], RunRecord]
    ) -> RunRecord | None:
        def update(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute("SELECT doc FROM srv_runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            new = change(RunRecord.from_json(json.loads(row[0])))
            conn.execute(
                "UPDATE srv_runs SET status = ?, doc = ? WHERE run_id = ?",
                (new.status, _dump(new.to_json()), run_id),
            )
            return new

        return await self._write(update)

    async def delete_run(self, run_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM srv_events WHERE run_id = ?", (run_id,))
            return conn.execute("DELETE FROM srv_runs WHERE run_id = ?", (run_id,)).rowcount > 0

        return await self._write(delete)

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT doc FROM srv_runs WHERE thread_id = ? AND status IN (?, ?) "
                "ORDER BY created_at, run_id",
                (thread_id, *_ACTIVE),
            ).fetchall()
        )
        return [RunRecord.from_json(json.loads(r[0])) for r in rows]

    # -- events ----------------------------------------------------------------------------------

    async def append_event(self, run_id: str, event: str, data: str) -> str:
        def append(conn: sqlite3.Connection) -> str:
            cur = conn.execute(
                "INSERT INTO srv_events (run_id, event, data) VALUES (?, ?, ?)",
                (run_id, event, data),
            )
            return str(cur.lastrowid)

        event_id = await self._write(append)
        self.waiters.notify(run_id)
        return event_id

    async def append_events(self, run_id: str, events: Sequence[tuple[str, str]]) -> list[str]:
        def append(conn: sqlite3.Connection) -> list[str]:
            ids = []
            for event, data in events:
                cur = conn.execute(
                    "INSERT INTO srv_events (run_id, event, data) VALUES (?, ?, ?)",
                    (run_id, event, data),
                )
                ids.append(str(cur.lastrowid))
            return ids

        found = await self._write(append)
        self.waiters.notify(run_id)
        return found

    async def read_events(
        self, run_id: str, after: str | None = None, limit: int = 1000
    ) -> list[StreamEvent]:
        try:
            cut = int(after) if after is not None else 0
        except ValueError:
            cut = 0
        rows = await self._call(
            lambda c: c.execute(
                "SELECT id, event, data FROM srv_events WHERE run_id = ? AND id > ? "
                "ORDER BY id LIMIT ?",
                (run_id, cut, limit),
            ).fetchall()
        )
        return [StreamEvent(str(r[0]), r[1], r[2]) for r in rows]


def records_from_url(url: str, **options: Any) -> SqliteRecordStore:
    """The `hitl_async.records` entry point: records in the file a `sqlite:` URL names."""
    path, query = parse_url(url)
    busy = options.get("busy_timeout", query.get("busy_timeout", 5000))
    return SqliteRecordStore(records_path(path), busy_timeout=int(busy))


def records_path(path: str) -> str:
    """Where the records of the checkpoint file `path` live: `app.db` -> `app.server.db`."""
    if path == MEMORY:
        return path
    stem, dot, suffix = path.rpartition(".")
    if not dot or "/" in suffix:
        return f"{path}.server"
    return f"{stem}.server.{suffix}"
