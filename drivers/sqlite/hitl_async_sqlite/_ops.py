"""Synchronous SQLite operations, each run whole on the connection's worker thread.

Every function here takes a plain `sqlite3.Connection` (opened in autocommit mode, i.e.
`isolation_level=None`) and is called from exactly one thread: the worker (`_worker.Worker`) that
owns the connection. The async layer in `saver.py` hands a whole function over in one hop, so a
commit, a load or a prune costs one thread round trip however many statements it runs.

Write operations are *jobs*: callables `job(conn) -> result` that `run_batch` applies inside one
`BEGIN IMMEDIATE` transaction, each under its own SAVEPOINT, so one failing job (say, a head
conflict) rolls back alone while the others in the batch commit together.

Commits and pending writes made under a lease check it first thing in their job (`_fence`:
same token, not released, not expired), inside the transaction that then writes, so a run that
lost its lease writes nothing; `inbox=` replaces the thread's `inbox` rows in that job too. The
other coordination statements (leases, inbox reads, the run queue) are in `_coordination`.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from hitl_async.checkpoint.base import (
    BlobRecord,
    CheckpointRecord,
    Commit,
    InboxEntry,
    Lease,
    LoadedCheckpoint,
    WriteRecord,
)
from hitl_async.checkpoint.rows import checked_metadata, checked_versions, metadata_matches
from hitl_async.errors import (
    CheckpointConflictError,
    CheckpointCorruptError,
    LeaseLostError,
    SerializationError,
)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

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

_SELECT_CHECKPOINT = (
    "SELECT checkpoint_id, parent_id, created_at, channel_versions, header, metadata "
    "FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- connection setup


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
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, _now())
            )
            applied.append(version)
        if conn.execute("SELECT 1 FROM store_identity").fetchone() is None:
            conn.execute(
                "INSERT INTO store_identity (id, created_at) VALUES (?, ?)",
                (uuid.uuid4().hex, _now()),
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


# --------------------------------------------------------------------------- batched writes


class BatchFailed(Exception):
    """The batch transaction itself failed (BEGIN, COMMIT, or SQLite aborted it mid-way)."""


def run_batch(conn: sqlite3.Connection, jobs: Sequence[Job]) -> list[tuple[bool, Any]]:
    """Apply `jobs` in one `BEGIN IMMEDIATE` ... `COMMIT`, each all-or-nothing via a SAVEPOINT.

    Returns one `(ok, result_or_exception)` per job. A job that raises is rolled back to its
    savepoint and reported; the rest still commit. If the transaction as a whole fails, every job
    failed: the error propagates and nothing of the batch is stored.
    """
    if len(jobs) == 1:
        return [_run_one(conn, jobs[0])]
    out: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for job in jobs:
            conn.execute("SAVEPOINT job")
            try:
                result = job(conn)
            except Exception as exc:
                if not conn.in_transaction:  # SQLite rolled the whole transaction back
                    raise BatchFailed(f"transaction aborted: {exc}") from exc
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                out.append((False, exc))
            else:
                conn.execute("RELEASE job")
                out.append((True, result))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return out


def _run_one(conn: sqlite3.Connection, job: Job) -> tuple[bool, Any]:
    """A batch of one job, without the savepoint a batch puts around each job (two statements
    fewer): the job failing rolls the whole transaction back, the same outcome for a lone job."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = job(conn)
    except Exception as exc:
        if not conn.in_transaction:  # SQLite rolled the transaction back: as in a batch
            raise BatchFailed(f"transaction aborted: {exc}") from exc
        conn.execute("ROLLBACK")
        return False, exc
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True, result


def _commit_body(
    record: CheckpointRecord,
    blobs: Sequence[BlobRecord],
    expected_head: str | None,
    writes: Sequence[WriteRecord],
    inbox: Sequence[InboxEntry] | None,
    *,
    check_head: bool = True,
    move_head: bool = True,
) -> Job:
    """The statements of one commit (head check first); no lease check. In a chain, a commit
    that follows the one before it on the same thread skips the head check (`check_head`: that
    one just set the head to its parent), and that one skips moving the head (`move_head`)."""
    t, ns, cid = record.thread_id, record.checkpoint_ns, record.checkpoint_id
    blob_rows = [(t, ns, b.channel, b.version, bytes(b.data)) for b in blobs]
    checkpoint_row = (
        t,
        ns,
        cid,
        record.parent_id,
        record.created_at,
        _dumps(record.channel_versions),
        bytes(record.header),
        _dumps(record.metadata),
    )
    write_rows = _write_rows(t, ns, cid, writes)
    inbox_rows = _inbox_rows(t, inbox)

    def body(conn: sqlite3.Connection) -> None:
        if check_head:
            row = conn.execute(
                "SELECT head_id FROM threads WHERE thread_id = ? AND checkpoint_ns = ?", (t, ns)
            ).fetchone()
            head = row[0] if row is not None else None
            if head != expected_head:
                raise CheckpointConflictError(t, ns, expected_head, head)
        else:
            head = expected_head
        inserted = conn.execute(  # a stored id is never reused: nothing inserted, refused
            "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_id, "
            "created_at, channel_versions, header, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING",
            checkpoint_row,
        ).rowcount
        if not inserted:
            raise duplicate_checkpoint(t, ns, cid, expected_head, head)
        if blob_rows:
            conn.executemany(
                "INSERT INTO blobs (thread_id, checkpoint_ns, channel, version, data) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (thread_id, checkpoint_ns, channel, version) "
                "DO UPDATE SET data = excluded.data",
                blob_rows,
            )
        if move_head:
            conn.execute(
                "INSERT INTO threads (thread_id, checkpoint_ns, head_id, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (thread_id, checkpoint_ns) DO UPDATE SET "
                "head_id = excluded.head_id, updated_at = excluded.updated_at",
                (t, ns, cid, _now()),
            )
        if write_rows:
            conn.execute(
                "DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? "
                "AND checkpoint_id = ?",
                (t, ns, cid),
            )
            _upsert_writes(conn, write_rows)
        if inbox_rows is not None:
            _replace_inbox(conn, t, inbox_rows)

    return body


def commit_job(
    record: CheckpointRecord,
    blobs: Sequence[BlobRecord],
    expected_head: str | None,
    writes: Sequence[WriteRecord],
    lease: Lease | None = None,
    inbox: Sequence[InboxEntry] | None = None,
) -> Job:
    """A job that checks the lease and the head, then stores blobs, the checkpoint, the head,
    writes and (if given) the thread's inbox."""
    body = _commit_body(record, blobs, expected_head, writes, inbox)
    fence = _fence(record.thread_id, lease)

    def job(conn: sqlite3.Connection) -> None:
        fence(conn)
        body(conn)

    return job


def commit_many_job(commits: Sequence[Commit], lease: Lease | None, release: bool) -> Job:
    """A job committing a chain in order, all or nothing: the first failure (lease lost, head
    conflict) is raised and the job's savepoint drops every commit of the chain. With `release`
    (and a lease), the lease is released in the same transaction once the chain is written."""
    threads = dict.fromkeys(c.record.thread_id for c in commits)
    fences = [_fence(t, lease) for t in threads]
    bodies = []
    for i, c in enumerate(commits):
        r = c.record
        after = i > 0 and _continues(commits[i - 1].record, c)
        before = i + 1 < len(commits) and _continues(r, commits[i + 1])
        bodies.append(
            _commit_body(
                r, c.blobs, c.expected_head, c.writes, c.inbox,
                check_head=not after, move_head=not before,
            )
        )  # fmt: skip

    def job(conn: sqlite3.Connection) -> None:
        for fence in fences:
            fence(conn)
        for body in bodies:
            body(conn)
        if release and lease is not None:
            release_lease(conn, lease)

    return job


def _continues(previous: CheckpointRecord, commit: Commit) -> bool:
    """Whether `commit` expects as head the checkpoint `previous` stores, on the same thread."""
    r = commit.record
    return (
        r.thread_id == previous.thread_id
        and r.checkpoint_ns == previous.checkpoint_ns
        and commit.expected_head == previous.checkpoint_id
    )


def release_lease(conn: sqlite3.Connection, lease: Lease) -> bool:
    """Mark the lease released if its token is still current; True if it was."""
    cursor = conn.execute(
        "UPDATE leases SET released = 1 WHERE thread_id = ? AND token = ? AND released = 0",
        (lease.thread_id, int(lease.token)),
    )
    return cursor.rowcount > 0


def _fence(thread_id: str, lease: Lease | None) -> Job:
    """A check that `lease` is still the thread's live lease, else `LeaseLostError`.

    Run inside the write transaction it guards (`BEGIN IMMEDIATE` holds the write lock), so no
    other process can take the lease over between the check and the writes.
    """
    if lease is None:
        return _noop
    token = int(lease.token)

    def fence(conn: sqlite3.Connection) -> None:
        row = conn.execute(
            "SELECT token, released, expires_at FROM leases WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        if row is None or row[0] != token or row[1]:  # expired alone: nobody took it over
            raise LeaseLostError(thread_id, token, row[0] if row is not None else None)

    return fence


def _noop(conn: sqlite3.Connection) -> None:
    pass


def _inbox_rows(thread_id: str, inbox: Sequence[InboxEntry] | None) -> list[tuple[Any, ...]] | None:
    """Rows of the `inbox` table for a replacement of the thread's entries (None: keep them)."""
    if inbox is None:
        return None
    rows = []
    for e in inbox:
        if e.thread_id != thread_id:
            raise ValueError(
                f"inbox entry {e.interrupt_id!r} is for thread {e.thread_id!r}, not {thread_id!r}"
            )
        deadline = None if e.deadline is None else float(e.deadline)
        on_timeout = None if e.on_timeout is None else bytes(e.on_timeout)
        rows.append(
            (thread_id, e.interrupt_id, e.checkpoint_ns, e.node, bytes(e.value), e.created_at,
             deadline, on_timeout, e.graph)
        )  # fmt: skip
    return rows


def _replace_inbox(conn: sqlite3.Connection, thread_id: str, rows: list[tuple[Any, ...]]) -> None:
    conn.execute("DELETE FROM inbox WHERE thread_id = ?", (thread_id,))
    if rows:
        conn.executemany(
            "INSERT INTO inbox (thread_id, interrupt_id, checkpoint_ns, node, value, created_at, "
            "deadline, on_timeout, graph) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (thread_id, interrupt_id) DO UPDATE SET "
            "checkpoint_ns = excluded.checkpoint_ns, node = excluded.node, "
            "value = excluded.value, created_at = excluded.created_at, "
            "deadline = excluded.deadline, on_timeout = excluded.on_timeout, "
            "graph = excluded.graph",
            rows,
        )


def duplicate_checkpoint(
    thread_id: str, checkpoint_ns: str, checkpoint_id: str, expected: str | None, head: str | None
) -> CheckpointConflictError:
    """The error for a commit whose checkpoint id is already stored: ids are never reused."""
    return CheckpointConflictError.duplicate(
        thread_id, checkpoint_ns, checkpoint_id, expected, head
    )


def missing_blob(
    thread_id: str, checkpoint_ns: str, checkpoint_id: str, channel: str, version: str
) -> SerializationError:
    """The error for a checkpoint whose `channel_versions` names a blob that is not stored."""
    where = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
    return SerializationError(
        f"thread {thread_id!r}{where}, checkpoint {checkpoint_id!r}: no blob for channel "
        f"{channel!r} at version {version!r}; the checkpoint store is corrupt"
    )


def _write_rows(
    thread_id: str, checkpoint_ns: str, checkpoint_id: str, writes: Sequence[WriteRecord]
) -> list[tuple[Any, ...]]:
    return [
        (thread_id, checkpoint_ns, checkpoint_id, w.task_id, int(w.idx), w.channel,
         bytes(w.data), w.task_path)
        for w in writes
    ]  # fmt: skip


def _upsert_writes(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, "
        "data, task_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET "
        "channel = excluded.channel, data = excluded.data, task_path = excluded.task_path",
        rows,
    )


def put_writes_job(
    thread_id: str,
    checkpoint_ns: str,
    checkpoint_id: str,
    writes: Sequence[WriteRecord],
    lease: Lease | None = None,
    inbox: Sequence[InboxEntry] | None = None,
) -> Job:
    """A job that checks the lease, upserts pending writes by `(task_id, idx)` and replaces the
    thread's inbox (if given)."""
    rows = _write_rows(thread_id, checkpoint_ns, checkpoint_id, writes)
    inbox_rows = _inbox_rows(thread_id, inbox)
    fence = _fence(thread_id, lease)

    def job(conn: sqlite3.Connection) -> None:
        fence(conn)
        if rows:
            _upsert_writes(conn, rows)
        if inbox_rows is not None:
            _replace_inbox(conn, thread_id, inbox_rows)

    return job


def delete_thread_job(thread_id: str) -> Job:
    """A job that removes every checkpoint row and inbox entry of a thread, in every namespace.

    The lease row stays, so the thread's fencing tokens keep growing; so do its run requests.
    """

    def job(conn: sqlite3.Connection) -> None:
        for table in (*TABLES, "inbox"):
            conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))

    return job


def destroy_job(conn: sqlite3.Connection) -> None:
    """Delete every row of every table, leases and runs included (the schema stays)."""
    for table in ALL_TABLES:
        conn.execute(f"DELETE FROM {table}")


def prune_job(thread_id: str, keep_last: int | None, cutoff: str | None) -> Job:
    """A job implementing `BaseSaver.prune` for one thread; returns how many were deleted."""

    def job(conn: sqlite3.Connection) -> int:
        heads = dict(
            conn.execute(
                "SELECT checkpoint_ns, head_id FROM threads WHERE thread_id = ?", (thread_id,)
            ).fetchall()
        )
        per_ns: dict[str, list[tuple[str, str, str]]] = {}
        for ns, cid, created_at, versions in conn.execute(
            "SELECT checkpoint_ns, checkpoint_id, created_at, channel_versions FROM checkpoints "
            "WHERE thread_id = ? ORDER BY checkpoint_ns, checkpoint_id DESC",
            (thread_id,),
        ):
            per_ns.setdefault(ns, []).append((cid, created_at, versions))
        doomed: list[tuple[str, str, str]] = []
        live: set[tuple[str, str, str]] = set()
        for ns, rows in per_ns.items():  # rows newest first
            for rank, (cid, created_at, versions) in enumerate(rows):
                if (
                    cid == heads.get(ns)
                    or (keep_last is not None and rank < keep_last)
                    or (cutoff is not None and created_at > cutoff)
                ):
                    live.update((ns, ch, v) for ch, v in json.loads(versions).items())
                else:
                    doomed.append((thread_id, ns, cid))
        if doomed:
            conn.executemany(
                "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
                "AND checkpoint_id = ?",
                doomed,
            )
            conn.executemany(
                "DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? "
                "AND checkpoint_id = ?",
                doomed,
            )
        orphans = [
            (thread_id, ns, ch, v)
            for ns, ch, v in conn.execute(
                "SELECT checkpoint_ns, channel, version FROM blobs WHERE thread_id = ?",
                (thread_id,),
            ).fetchall()
            if (ns, ch, v) not in live
        ]
        if orphans:
            conn.executemany(
                "DELETE FROM blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? "
                "AND version = ?",
                orphans,
            )
        return len(doomed)

    return job


# --------------------------------------------------------------------------- reads


def read(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` inside one read transaction, so all its statements see one snapshot."""
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _loaded(
    conn: sqlite3.Connection, thread_id: str, checkpoint_ns: str, row: Sequence[Any]
) -> LoadedCheckpoint:
    cid, parent_id, created_at, versions_json, header, metadata_json = row
    versions = checked_versions(thread_id, cid, versions_json)
    if not isinstance(header, bytes) or not isinstance(created_at, str):
        raise CheckpointCorruptError(
            thread_id, cid, "header", "the header or created_at column has the wrong type"
        )
    record = CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=cid,
        parent_id=parent_id,
        created_at=created_at,
        channel_versions=versions,
        header=bytes(header),
        metadata=checked_metadata(thread_id, cid, metadata_json),
    )
    blobs: dict[str, bytes] = {}
    for channel, version in versions.items():
        found = conn.execute(
            "SELECT data FROM blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? "
            "AND version = ?",
            (thread_id, checkpoint_ns, channel, version),
        ).fetchone()
        if found is None:
            raise missing_blob(thread_id, checkpoint_ns, cid, channel, version)
        blobs[channel] = bytes(found[0])
    writes = [
        WriteRecord(task_id=task_id, idx=idx, channel=channel, data=bytes(data), task_path=path)
        for task_id, idx, channel, data, path in conn.execute(
            "SELECT task_id, idx, channel, data, task_path FROM writes WHERE thread_id = ? "
            "AND checkpoint_ns = ? AND checkpoint_id = ? ORDER BY task_id, idx",
            (thread_id, checkpoint_ns, cid),
        )
    ]
    return LoadedCheckpoint(record, blobs, writes)


def load(
    conn: sqlite3.Connection, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
) -> LoadedCheckpoint | None:
    """The head (or the given checkpoint) with its blobs and writes; `None` if absent."""
    if checkpoint_id:
        row = conn.execute(
            _SELECT_CHECKPOINT + " AND checkpoint_id = ?", (thread_id, checkpoint_ns, checkpoint_id)
        ).fetchone()
    else:
        row = conn.execute(
            _SELECT_CHECKPOINT + " AND checkpoint_id = (SELECT head_id FROM threads "
            "WHERE thread_id = ? AND checkpoint_ns = ?)",
            (thread_id, checkpoint_ns, thread_id, checkpoint_ns),
        ).fetchone()
    return None if row is None else _loaded(conn, thread_id, checkpoint_ns, row)


def history(
    conn: sqlite3.Connection,
    thread_id: str,
    checkpoint_ns: str,
    before: str | None,
    limit: int | None,
    filter: Mapping[str, Any] | None,
) -> list[LoadedCheckpoint]:
    """Checkpoints newest first, `< before`, metadata-filtered (in Python), then `limit`ed.

    The filter is applied in Python with the reference driver's equality (so `1 == 1.0` and nested
    dicts compare exactly as in `InMemorySaver`); rows stream from the cursor and the scan stops
    as soon as `limit` matches are found.
    """
    if limit is not None and limit <= 0:
        return []
    sql = _SELECT_CHECKPOINT
    params: list[Any] = [thread_id, checkpoint_ns]
    if before is not None:
        sql += " AND checkpoint_id < ?"
        params.append(before)
    sql += " ORDER BY checkpoint_id DESC"
    if limit is not None and not filter:
        sql += " LIMIT ?"
        params.append(limit)
    picked: list[Sequence[Any]] = []
    cursor = conn.execute(sql, params)
    try:
        for row in cursor:
            if filter and not metadata_matches(checked_metadata(thread_id, row[0], row[5]), filter):
                continue
            picked.append(row)
            if limit is not None and len(picked) >= limit:
                break
    finally:
        cursor.close()
    return [_loaded(conn, thread_id, checkpoint_ns, row) for row in picked]


def list_threads(conn: sqlite3.Connection, limit: int | None) -> list[str]:
    """Distinct ids of threads that have a head (so at least one checkpoint)."""
    if limit is not None:
        if limit <= 0:
            return []
        rows = conn.execute("SELECT DISTINCT thread_id FROM threads LIMIT ?", (limit,))
    else:
        rows = conn.execute("SELECT DISTINCT thread_id FROM threads")
    return [row[0] for row in rows]
