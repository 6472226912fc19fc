"""The SQLite driver's schema: its migrations, applied in order on first use of a file, and the
per-connection pragmas; the store's identity (a random id written when the file is set up).
"""

from __future__ import annotations

import sqlite3
import uuid

from hitl_async_sqlite._ops import now

__all__ = [
    "ALL_TABLES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "configure",
    "migrate",
    "store_id",
]

# (version, statements). Append new migrations; never edit an applied one.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            # One row per (thread, namespace): the head pointer. A table of its own so later
            # migrations can add lease columns and run-state without touching checkpoints.
            """CREATE TABLE IF NOT EXISTS threads (
                thread_id TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL,
                head_id TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (thread_id, checkpoint_ns)
            )""",
            """CREATE TABLE IF NOT EXISTS checkpoints (
                thread_id TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL,
                checkpoint_id TEXT NOT NULL,
                parent_id TEXT,
                created_at TEXT NOT NULL,
                channel_versions TEXT NOT NULL,
                header BLOB NOT NULL,
                metadata TEXT NOT NULL,
                PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
            )""",
            """CREATE TABLE IF NOT EXISTS blobs (
                thread_id TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL,
                channel TEXT NOT NULL,
                version TEXT NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
            )""",
            """CREATE TABLE IF NOT EXISTS writes (
                thread_id TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL,
                checkpoint_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                channel TEXT NOT NULL,
                data BLOB NOT NULL,
                task_path TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
            )""",
        ),
    ),
    (
        2,
        (
            # Coordination. A lease row is never deleted (but by destroy): `token` only grows.
            # `expires_at` is time.time() of the writing process (one machine, one clock).
            """CREATE TABLE IF NOT EXISTS leases (
                thread_id TEXT NOT NULL PRIMARY KEY,
                owner TEXT NOT NULL,
                token INTEGER NOT NULL,
                expires_at REAL NOT NULL,
                graph TEXT NOT NULL DEFAULT '',
                released INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX IF NOT EXISTS leases_expiry ON leases (released, expires_at)",
            # The inbox index: a thread's pending interrupts, replaced by commit/put_writes.
            """CREATE TABLE IF NOT EXISTS inbox (
                thread_id TEXT NOT NULL,
                interrupt_id TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL,
                node TEXT NOT NULL,
                value BLOB NOT NULL,
                created_at TEXT NOT NULL,
                deadline REAL,
                on_timeout BLOB,
                graph TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (thread_id, interrupt_id)
            )""",
            "CREATE INDEX IF NOT EXISTS inbox_order ON inbox (created_at, thread_id, interrupt_id)",
            "CREATE INDEX IF NOT EXISTS inbox_deadline ON inbox (deadline)",
            # The run queue: queued -> running -> done | failed, or queued -> cancelled.
            """CREATE TABLE IF NOT EXISTS runs (
                id TEXT NOT NULL PRIMARY KEY,
                queue TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                payload BLOB NOT NULL,
                status TEXT NOT NULL,
                created_at TEXT NOT NULL,
                owner TEXT,
                claim_expires REAL,
                attempts INTEGER NOT NULL DEFAULT 0,
                result BLOB,
                error TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS runs_queue ON runs (queue, status, created_at)",
            "CREATE INDEX IF NOT EXISTS runs_thread ON runs (thread_id, status)",
        ),
    ),
)

MIGRATIONS += (
    (
        3,
        (
            # The store's identity: a random id written once, when the file is set up. A saver
            # that finds another id (or no file) knows its store was replaced or deleted.
            """CREATE TABLE IF NOT EXISTS store_identity (
                id TEXT NOT NULL PRIMARY KEY,
                created_at TEXT NOT NULL
            )""",
        ),
    ),
)

MIGRATIONS += (
    (
        4,
        (
            # The ttl a lease was taken or renewed for: with it, a process can judge a lease's
            # expiry by watching it for that long on its own clock (see `_coordination`).
            "ALTER TABLE leases ADD COLUMN ttl REAL NOT NULL DEFAULT 0",
        ),
    ),
    (
        5,
        (
            # Node results cached for `compile(cache=saver)` (the CacheStore capability);
            # expires_at is seconds since the epoch, NULL: until cleared.
            """CREATE TABLE IF NOT EXISTS node_cache (
                ns TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                expires_at REAL,
                PRIMARY KEY (ns, key)
            )""",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]
TABLES = ("writes", "blobs", "checkpoints", "threads")
"""The tables holding a thread's checkpoint data (`delete_thread` empties them, and its inbox)."""
ALL_TABLES = (*TABLES, "inbox", "leases", "runs", "node_cache")


def configure(conn: sqlite3.Connection, journal_mode: str, synchronous: str, busy_ms: int) -> str:
    """Apply the per-connection pragmas; return the journal mode actually in force."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    mode = conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0]
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = OFF")
    return str(mode).upper()


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply missing migrations in one `BEGIN IMMEDIATE` transaction; return those applied.

    Safe when several processes race: the write lock serializes them and the loser finds every
    version already recorded in `schema_version`.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_version")}
        applied: list[int] = []
        for version, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, now())
            )
            applied.append(version)
        if conn.execute("SELECT 1 FROM store_identity").fetchone() is None:
            conn.execute(
                "INSERT INTO store_identity (id, created_at) VALUES (?, ?)",
                (uuid.uuid4().hex, now()),
            )
        conn.execute("COMMIT")
        return applied
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def store_id(conn: sqlite3.Connection) -> str:
    """The random id the file was given when it was set up."""
    row = conn.execute("SELECT id FROM store_identity ORDER BY created_at LIMIT 1").fetchone()
    return str(row[0]) if row is not None else ""
