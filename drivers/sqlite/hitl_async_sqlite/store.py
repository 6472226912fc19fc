"""The long-term memory store on SQLite: `connect_store("sqlite:///app.db")`.

Items live in the `store_items` table of the same database file as the checkpoints (vectors in
`store_vectors`), written through a connection of their own in WAL mode. Synchronous calls run
on the caller's thread; async calls too while their reads and writes are short and nothing else
holds the write lock (connections that never wait, see `_read_inline` and `_write_inline`),
otherwise on one worker thread, one at a time under a lock (`_store_connections`).
Filters on scalar values are evaluated by SQLite (`json_type`/`json_extract`), others in
Python (SQL in `_store_sql`); semantic search scores every candidate in Python (exact cosine).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hitl_async.store.backend import PutRow, StoredRow
from hitl_async.store.base import IndexConfig, TTLConfig
from hitl_async.store.driver import BackendStore, grouping_options
from hitl_async.store.filters import Condition
from hitl_async_sqlite import parse_url
from hitl_async_sqlite._store_connections import StoreConnections
from hitl_async_sqlite._store_sql import COLUMNS, page_query, row, scope, where_clause
from hitl_async_sqlite._store_sql import SCHEMA as SCHEMA

__all__ = ["SqliteStore", "SqliteStoreBackend", "store_from_url"]

_REFS_PER_STATEMENT = 400  # keys looked up by one statement (2 variables each; SQLite's
# oldest limit is 999 variables)


class SqliteStoreBackend(StoreConnections):
    """`StoreBackend` on one `sqlite3` connection."""

    sync_capable = True

    def pushdown(self, conditions: tuple[Condition, ...]) -> bool:
        return all(c.scalar and '"' not in c.field and "\\" not in c.field for c in conditions)

    async def setup(self) -> None:
        await self._call(lambda conn: None, False)

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
        sql = f"SELECT {COLUMNS} FROM store_items WHERE prefix = ? AND key = ?{live}"

        def run(conn: sqlite3.Connection) -> list[StoredRow | None]:
            if len(refs) == 1:
                ns, key = refs[0]
                params: tuple[Any, ...] = (ns, key) if live_after is None else (ns, key, live_after)
                r = conn.execute(sql, params).fetchone()
                return [None if r is None else row(r)]
            found: dict[tuple[str, str], StoredRow] = {}
            for start in range(0, len(refs), _REFS_PER_STATEMENT):  # one statement per chunk
                chunk = refs[start : start + _REFS_PER_STATEMENT]
                pairs = ", ".join(["(?, ?)"] * len(chunk))
                many = (  # CROSS JOIN: the keys drive, each a primary-key lookup
                    f"SELECT {COLUMNS} FROM (VALUES {pairs}) AS r CROSS JOIN store_items "
                    "ON prefix = r.column1 AND key = r.column2"
                    + ("" if live_after is None else " AND (expires_us IS NULL OR expires_us > ?)")
                )
                flat: list[Any] = [part for ref in chunk for part in ref]
                if live_after is not None:
                    flat.append(live_after)
                for r in conn.execute(many, flat):
                    found[(r[0], r[1])] = row(r)
            return [found.get(ref) for ref in refs]

        if not sync:
            found = self._read_inline(run)
            if found is not None:
                return found
        return await self._call(run, sync)

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

    async def query(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        limit: int | None,
        offset: int,
        live_after: int | None,
        sync: bool,
    ) -> list[StoredRow]:
        sql, params = page_query(prefix, conditions, limit, offset, live_after)

        def run(conn: sqlite3.Connection) -> list[StoredRow]:
            return [row(r) for r in conn.execute(sql, params).fetchall()]

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
        where, params = where_clause(prefix, conditions, live_after)
        vwhere, vparams = scope(prefix, None)

        def run(conn: sqlite3.Connection) -> list[tuple[StoredRow, list[bytes]]]:
            rows = [
                row(r)
                for r in conn.execute(f"SELECT {COLUMNS} FROM store_items WHERE {where}", params)
            ]
            vectors: dict[tuple[str, str], list[bytes]] = {}
            for ns, key, blob in conn.execute(
                f"SELECT prefix, key, vector FROM store_vectors WHERE {vwhere}", vparams
            ):
                vectors.setdefault((ns, key), []).append(blob)
            return [(r, vectors.get((r.namespace, r.key), [])) for r in rows]

        return await self._call(run, sync)

    async def namespaces(self, prefix: str, live_after: int | None, sync: bool) -> list[str]:
        where, params = scope(prefix, live_after)
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
