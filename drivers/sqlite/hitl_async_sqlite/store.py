"""The long-term memory store on SQLite: `connect_store("sqlite:///app.db")`.

Items live in the `store_items` table of the same database file as the checkpoints (vectors in
`store_vectors`), written through a connection of their own in WAL mode. Synchronous calls run
on the caller's thread; async calls too while their reads and writes are short and nothing else
holds the write lock (connections that never wait, see `_read_inline` and `_write_inline`),
otherwise on one worker thread, one at a time under a lock.
Filters on scalar values are evaluated by SQLite (`json_type`/`json_extract`), others in
Python; semantic search scores every candidate in Python (exact cosine).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hitl_async.store.backend import PutRow, StoredRow
from hitl_async.store.base import IndexConfig, TTLConfig
from hitl_async.store.driver import BackendStore, grouping_options
from hitl_async.store.filters import Condition
from hitl_async_sqlite import parse_url

__all__ = ["SqliteStore", "SqliteStoreBackend", "store_from_url"]

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS store_items (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    expires_us INTEGER,
    ttl_minutes REAL,
    PRIMARY KEY (prefix, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_items_updated ON store_items (updated_us);
CREATE INDEX IF NOT EXISTS store_items_recent ON store_items (prefix, updated_us);
CREATE INDEX IF NOT EXISTS store_items_expires ON store_items (expires_us)
    WHERE expires_us IS NOT NULL;
CREATE TABLE IF NOT EXISTS store_vectors (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    field TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (prefix, key, field)
) WITHOUT ROWID;
"""

_COLUMNS = "prefix, key, value, created_us, updated_us, ttl_minutes"
_INLINE_STEPS = 1000  # SQLite virtual-machine steps between budget checks of an inline read
_INLINE_BUDGET = 12  # checks before it is interrupted (12k steps: about a millisecond here)
_REFS_PER_STATEMENT = 400  # keys looked up by one statement (2 variables each; SQLite's
# oldest limit is 999 variables)
_CHECKPOINT_EVERY = 200  # inline commits between WAL checkpoints (about SQLite's 1000 pages)
_NUMBER = "json_type(value, ?) IN ('integer', 'real')"
_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _path(field: str) -> str:
    return f'$."{field}"'


def _condition(cond: Condition) -> tuple[str, list[Any]]:
    """SQL for one scalar condition (see `hitl_async.store.filters` for the rules)."""
    path = _path(cond.field)
    operand = cond.operand
    if cond.op in _OPS:
        if cond.nan:
            return "0", []
        if isinstance(operand, str):
            return f"(json_type(value, ?) = 'text' AND json_extract(value, ?) {_OPS[cond.op]} ?)", [
                path,
                path,
                operand,
            ]
        return f"({_NUMBER} AND json_extract(value, ?) {_OPS[cond.op]} ?)", [path, path, operand]
    if isinstance(operand, bool):
        eq, params = "json_type(value, ?) = ?", [path, "true" if operand else "false"]
    elif operand is None:
        eq, params = "json_type(value, ?) = 'null'", [path]
    elif isinstance(operand, str) and operand[:1] not in ("[", "{"):
        # json_extract gives a JSON string's text, a number as a number (never equal to
        # text), true as 1 and an array or object as its JSON text (which starts with [ or {):
        # one parse of the row is exact for this operand.
        eq, params = "json_extract(value, ?) = ?", [path, operand]
    elif isinstance(operand, str):
        eq, params = (
            "(json_type(value, ?) = 'text' AND json_extract(value, ?) = ?)",
            [
                path,
                path,
                operand,
            ],
        )
    elif cond.nan:
        eq, params = "0", []
    else:
        eq, params = f"({_NUMBER} AND json_extract(value, ?) = ?)", [path, path, operand]
    if cond.op == "ne":
        return f"NOT COALESCE({eq}, 0)", params
    return eq, params


def _scope(prefix: str, live_after: int | None) -> tuple[str, list[Any]]:
    """WHERE clauses for a namespace prefix (at label boundaries) and liveness."""
    clauses: list[str] = []
    params: list[Any] = []
    if prefix:
        # '/' is the character after '.', so [P., P/) is every namespace below P.
        clauses.append("(prefix = ? OR (prefix >= ? AND prefix < ?))")
        params += [prefix, prefix + ".", prefix + "/"]
    if live_after is not None:
        clauses.append("(expires_us IS NULL OR expires_us > ?)")
        params.append(live_after)
    return (" AND ".join(clauses) or "1"), params


def _row(r: tuple[Any, ...]) -> StoredRow:
    return StoredRow(r[0], r[1], r[2], r[3], r[4], r[5])


class SqliteStoreBackend:
    """`StoreBackend` on one `sqlite3` connection."""

    sync_capable = True

    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self.busy_timeout = float(busy_timeout)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self.inline_reads = True
        """Reads of async calls run on the caller's thread when they can (see `_read_inline`)."""
        self.inline_writes = True
        """So do writes (see `_write_inline`)."""
        self._writer: sqlite3.Connection | None = None
        self._inline_commits = 0
        self._executor: ThreadPoolExecutor | None = None

    def pushdown(self, conditions: tuple[Condition, ...]) -> bool:
        return all(c.scalar and '"' not in c.field and "\\" not in c.field for c in conditions)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=self.busy_timeout, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    async def offload(self, fn: Callable[[], T]) -> T:
        """Run `fn` (a whole batch, made of synchronous calls) on the connection's thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hitl-sqlite-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _call(self, fn: Callable[[sqlite3.Connection], T], sync: bool) -> T:
        def run() -> T:
            with self._lock:
                return fn(self._connection())

        if sync:
            return run()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hitl-sqlite-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    @staticmethod
    def _transaction(conn: sqlite3.Connection, fn: Callable[[], None]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            fn()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def setup(self) -> None:
        await self._call(lambda conn: None, False)

    async def aclose(self) -> None:
        def close(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        if self._conn is not None:
            await self._call(close, False)
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def destroy(self) -> None:
        """Drop the store's tables (tests)."""

        def drop(conn: sqlite3.Connection) -> None:
            conn.executescript(
                "DROP TABLE IF EXISTS store_items; DROP TABLE IF EXISTS store_vectors;"
            )

        await self._call(drop, False)

    async def fetch(
        self, refs: list[tuple[str, str]], live_after: int | None, sync: bool
    ) -> list[StoredRow | None]:
        live = "" if live_after is None else " AND (expires_us IS NULL OR expires_us > ?)"
        sql = f"SELECT {_COLUMNS} FROM store_items WHERE prefix = ? AND key = ?{live}"

        def run(conn: sqlite3.Connection) -> list[StoredRow | None]:
            if len(refs) == 1:
                ns, key = refs[0]
                params: tuple[Any, ...] = (ns, key) if live_after is None else (ns, key, live_after)
                r = conn.execute(sql, params).fetchone()
                return [None if r is None else _row(r)]
            found: dict[tuple[str, str], StoredRow] = {}
            for start in range(0, len(refs), _REFS_PER_STATEMENT):  # one statement per chunk
                chunk = refs[start : start + _REFS_PER_STATEMENT]
                pairs = ", ".join(["(?, ?)"] * len(chunk))
                many = (  # CROSS JOIN: the keys drive, each a primary-key lookup
                    f"SELECT {_COLUMNS} FROM (VALUES {pairs}) AS r CROSS JOIN store_items "
                    "ON prefix = r.column1 AND key = r.column2"
                    + ("" if live_after is None else " AND (expires_us IS NULL OR expires_us > ?)")
                )
                flat: list[Any] = [part for ref in chunk for part in ref]
                if live_after is not None:
                    flat.append(live_after)
                for r in conn.execute(many, flat):
                    found[(r[0], r[1])] = _row(r)
            return [found.get(ref) for ref in refs]

        if not sync:
            found = self._read_inline(run)
            if found is not None:
                return found
        return await self._call(run, sync)

    def _read_inline(self, fn: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run a read on the calling thread through a read-only connection that never waits,
        or answer None (then the caller takes the store's thread): in WAL mode readers do not
        wait for writers; anything locked, another thread reading, or a read that runs past a
        small budget of SQLite steps (about a millisecond) is interrupted and left to the
        thread, so an event loop is never held up for long."""
        if self._conn is None or self.path in ("", ":memory:"):
            return None  # not set up yet, or a private database only its own connection sees
        if not self._reader_lock.acquire(blocking=False):
            return None
        try:
            if self._reader is None:
                reader = sqlite3.connect(
                    self.path, isolation_level=None, timeout=0, check_same_thread=False
                )
                reader.execute("PRAGMA query_only = 1")
                self._reader = reader
            budget = [_INLINE_BUDGET]

            def spend() -> int:
                budget[0] -= 1
                return 1 if budget[0] < 0 else 0

            self._reader.set_progress_handler(spend, _INLINE_STEPS)
            try:
                return fn(self._reader)
            finally:
                self._reader.set_progress_handler(None, 0)
        except sqlite3.OperationalError:  # busy, locked or over budget: the thread will wait
            return None
        finally:
            self._reader_lock.release()

    def _write_inline(self, fn: Callable[[sqlite3.Connection], None]) -> bool:
        """Run a write transaction on the calling thread, through a connection that never
        waits, and say whether it committed. Like `_read_inline`: when the store's thread is
        busy, another connection holds the write lock, or the write runs past the step budget,
        nothing is changed (rolled back) and the caller takes the store's thread. A committed
        WAL write does not wait for the disk (`synchronous=NORMAL`, as on the thread); the
        WAL checkpoints that do are left to the thread."""
        if self._conn is None or self.path in ("", ":memory:"):
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            writer = self._writer
            if writer is None:
                writer = sqlite3.connect(
                    self.path, isolation_level=None, timeout=0, check_same_thread=False
                )
                writer.execute("PRAGMA synchronous = NORMAL")
                writer.execute("PRAGMA wal_autocheckpoint = 0")
                self._writer = writer
            budget = [_INLINE_BUDGET]

            def spend() -> int:
                budget[0] -= 1
                return 1 if budget[0] < 0 else 0

            try:
                writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # another connection writes
                return False
            writer.set_progress_handler(spend, _INLINE_STEPS)
            try:
                fn(writer)
                writer.execute("COMMIT")
            except BaseException as exc:
                writer.set_progress_handler(None, 0)
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):  # over budget or busy: undone
                    return False
                raise
            writer.set_progress_handler(None, 0)
        finally:
            self._lock.release()
        self._inline_commits += 1
        if self._inline_commits % _CHECKPOINT_EVERY == 0:
            self._checkpoint_soon()
        return True

    def _checkpoint_soon(self) -> None:
        """Have the store's thread copy the WAL back into the database (what SQLite's automatic
        checkpoint does on commit), without waiting for it."""

        def checkpoint() -> None:
            try:
                with self._lock:
                    if self._conn is not None:  # else closed meanwhile
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # the next one will do it

        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hitl-sqlite-store")
        self._executor.submit(checkpoint)

    async def write(self, puts: list[PutRow], deletes: list[tuple[str, str]], sync: bool) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            if deletes:
                conn.executemany("DELETE FROM store_items WHERE prefix = ? AND key = ?", deletes)
                conn.executemany("DELETE FROM store_vectors WHERE prefix = ? AND key = ?", deletes)
            if puts:
                conn.executemany(
                    "INSERT INTO store_items (prefix, key, value, created_us, updated_us, "
                    "expires_us, ttl_minutes) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value, "
                    "updated_us = excluded.updated_us, expires_us = excluded.expires_us, "
                    "ttl_minutes = excluded.ttl_minutes",
                    [
                        (
                            p.namespace,
                            p.key,
                            p.value.decode(),
                            p.now_us,
                            p.now_us,
                            p.expires_us,
                            p.ttl_minutes,
                        )
                        for p in puts
                    ],
                )
            for p in puts:
                if p.vectors is not None:
                    conn.execute(
                        "DELETE FROM store_vectors WHERE prefix = ? AND key = ?",
                        (p.namespace, p.key),
                    )
                    conn.executemany(
                        "INSERT OR REPLACE INTO store_vectors VALUES (?, ?, ?, ?)",
                        [(p.namespace, p.key, field, blob) for field, blob in p.vectors],
                    )

        if not sync and self._write_inline(apply):
            return
        await self._call(lambda conn: self._transaction(conn, lambda: apply(conn)), sync)

    async def touch(self, refs: list[tuple[str, str]], now_us: int, sync: bool) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE store_items SET expires_us = ? + CAST(ttl_minutes * 60000000 AS INTEGER) "
                "WHERE prefix = ? AND key = ? AND ttl_minutes IS NOT NULL",
                [(now_us, ns, key) for ns, key in refs],
            )

        await self._call(run, sync)

    def _where(
        self, prefix: str, conditions: tuple[Condition, ...], live_after: int | None
    ) -> tuple[str, list[Any]]:
        where, params = _scope(prefix, live_after)
        for cond in conditions:
            sql, extra = _condition(cond)
            where += f" AND {sql}"
            params += extra
        return where, params

    def _page(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        limit: int | None,
        offset: int,
        live_after: int | None,
    ) -> tuple[str, list[Any]]:
        """A page of a search. Under a prefix it is two parts merged: the namespace itself,
        read newest first along the (prefix, updated_us) index and stopped at the page's end,
        and the namespaces below it, sorted."""
        rest, extra = self._where("", conditions, live_after)
        order = "ORDER BY updated_us DESC, prefix, key"
        page = [-1 if limit is None else limit, offset]
        if not prefix:
            return f"SELECT {_COLUMNS} FROM store_items WHERE {rest} {order} LIMIT ? OFFSET ?", [
                *extra,
                *page,
            ]
        upto = -1 if limit is None else offset + limit
        sql = (
            f"SELECT * FROM (SELECT {_COLUMNS} FROM store_items WHERE prefix = ? AND {rest} "
            "ORDER BY updated_us DESC, key LIMIT ?) UNION ALL "
            f"SELECT * FROM (SELECT {_COLUMNS} FROM store_items WHERE prefix >= ? AND prefix < ? "
            f"AND {rest} {order} LIMIT ?) {order} LIMIT ? OFFSET ?"
        )
        return sql, [prefix, *extra, upto, prefix + ".", prefix + "/", *extra, upto, *page]

    async def query(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        limit: int | None,
        offset: int,
        live_after: int | None,
        sync: bool,
    ) -> list[StoredRow]:
        sql, params = self._page(prefix, conditions, limit, offset, live_after)

        def run(conn: sqlite3.Connection) -> list[StoredRow]:
            return [_row(r) for r in conn.execute(sql, params).fetchall()]

        if not sync:
            found = self._read_inline(run)
            if found is not None:
                return found
        return await self._call(run, sync)

    async def candidates(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        live_after: int | None,
        sync: bool,
    ) -> list[tuple[StoredRow, list[bytes]]]:
        where, params = self._where(prefix, conditions, live_after)
        vwhere, vparams = _scope(prefix, None)

        def run(conn: sqlite3.Connection) -> list[tuple[StoredRow, list[bytes]]]:
            rows = [
                _row(r)
                for r in conn.execute(f"SELECT {_COLUMNS} FROM store_items WHERE {where}", params)
            ]
            vectors: dict[tuple[str, str], list[bytes]] = {}
            for ns, key, blob in conn.execute(
                f"SELECT prefix, key, vector FROM store_vectors WHERE {vwhere}", vparams
            ):
                vectors.setdefault((ns, key), []).append(blob)
            return [(r, vectors.get((r.namespace, r.key), [])) for r in rows]

        return await self._call(run, sync)

    async def namespaces(self, prefix: str, live_after: int | None, sync: bool) -> list[str]:
        where, params = _scope(prefix, live_after)
        sql = f"SELECT DISTINCT prefix FROM store_items WHERE {where}"

        def run(conn: sqlite3.Connection) -> list[str]:
            return [r[0] for r in conn.execute(sql, params)]

        if not sync:
            found = self._read_inline(run)
            if found is not None:
                return found
        return await self._call(run, sync)

    async def sweep(self, now_us: int, sync: bool) -> int:
        def run(conn: sqlite3.Connection) -> int:
            swept = 0

            def body() -> None:
                nonlocal swept
                conn.execute(
                    "DELETE FROM store_vectors WHERE (prefix, key) IN (SELECT prefix, key FROM "
                    "store_items WHERE expires_us IS NOT NULL AND expires_us <= ?)",
                    (now_us,),
                )
                cur = conn.execute(
                    "DELETE FROM store_items WHERE expires_us IS NOT NULL AND expires_us <= ?",
                    (now_us,),
                )
                swept = cur.rowcount

            self._transaction(conn, body)
            return swept

        return await self._call(run, sync)


class SqliteStore(BackendStore):
    """A store in a SQLite file (`path`), with TTLs and optional semantic search."""

    def __init__(
        self,
        path: str,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        group_commit: bool = True,
        batches_in_flight: int = 1,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = path
        self.sqlite = SqliteStoreBackend(path, busy_timeout=busy_timeout)
        super().__init__(
            self.sqlite,
            index=index,
            ttl=ttl,
            group_commit=group_commit,
            batches_in_flight=batches_in_flight,
        )

    async def destroy(self) -> None:
        """Drop the store's tables (for tests)."""
        await self.sqlite.destroy()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"


_SAVER_ONLY = {"synchronous", "journal_mode", "max_batch"}  # the saver's own options


def store_from_url(url: str, **options: Any) -> SqliteStore:
    """The `hitl_async.stores` entry point: a `SqliteStore` for a `sqlite:` URL (the same URL
    and options as the checkpoints: `busy_timeout` (seconds) applies, the saver's other options
    are accepted and left to it)."""
    path, query = parse_url(url)
    merged = {k: v for k, v in {**query, **options}.items() if k not in _SAVER_ONLY}
    if "busy_timeout" in merged:
        merged["busy_timeout"] = float(merged["busy_timeout"])
    return SqliteStore(path, **grouping_options(merged))
