"""Synchronous SQLite operations, each run whole on the connection's worker thread.

Every function here takes a plain `sqlite3.Connection` (opened in autocommit mode, i.e.
`isolation_level=None`) and is called from exactly one thread: the worker (`_worker.Worker`) that
owns the connection. The async layer (`_connection.SqliteConnection`) hands a whole function over
in one hop, so a commit, a load or a prune costs one thread round trip however many statements
it runs.

Write operations are *jobs*: callables `job(conn) -> result` that `run_batch` applies inside one
`BEGIN IMMEDIATE` transaction, each under its own SAVEPOINT, so one failing job (say, a head
conflict) rolls back alone while the others in the batch commit together. The jobs themselves
are in `_writes` (checkpoints) and `_coordination` (leases, the run queue); the schema is in
`_schema`. Reads are here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from hitl_async.checkpoint.base import CheckpointRecord, LoadedCheckpoint, WriteRecord
from hitl_async.checkpoint.rows import checked_metadata, checked_versions, metadata_matches
from hitl_async.errors import CheckpointCorruptError, SerializationError

__all__ = [
    "BatchFailed",
    "Job",
    "dumps",
    "history",
    "list_threads",
    "load",
    "missing_blob",
    "now",
    "read",
    "run_batch",
]

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

_SELECT_CHECKPOINT = (
    "SELECT checkpoint_id, parent_id, created_at, channel_versions, header, metadata "
    "FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"))


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


def missing_blob(
    thread_id: str, checkpoint_ns: str, checkpoint_id: str, channel: str, version: str
) -> SerializationError:
    """The error for a checkpoint whose `channel_versions` names a blob that is not stored."""
    where = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
    return SerializationError(
        f"thread {thread_id!r}{where}, checkpoint {checkpoint_id!r}: no blob for channel "
        f"{channel!r} at version {version!r}; the checkpoint store is corrupt"
    )


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


def thread_namespaces(conn: sqlite3.Connection, thread_id: str) -> list[str]:
    """The namespaces in which the thread has a head (so a checkpoint), sorted."""
    rows = conn.execute(
        "SELECT checkpoint_ns FROM threads WHERE thread_id = ? ORDER BY checkpoint_ns",
        (thread_id,),
    )
    return [row[0] for row in rows]
