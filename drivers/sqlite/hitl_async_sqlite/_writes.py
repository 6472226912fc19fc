"""The SQLite driver's write jobs: commits, pending writes, deletes and prunes.

Each builds a job (`_ops.Job`) that the worker applies inside a batch transaction
(`_ops.run_batch`). Commits and pending writes made under a lease check it first thing in their
job (`_fence`: same token, not released, not expired), inside the transaction that then writes,
so a run that lost its lease writes nothing; `inbox=` replaces the thread's `inbox` rows in that
job too. The other coordination statements (leases, inbox reads, the run queue) are in
`_coordination`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from hitl_async.checkpoint.base import (
    BlobRecord,
    CheckpointRecord,
    Commit,
    InboxEntry,
    Lease,
    WriteRecord,
)
from hitl_async.errors import CheckpointConflictError, LeaseLostError
from hitl_async_sqlite._ops import Job, dumps, now
from hitl_async_sqlite._schema import ALL_TABLES, TABLES

__all__ = [
    "commit_job",
    "commit_many_job",
    "delete_thread_job",
    "destroy_job",
    "duplicate_checkpoint",
    "prune_job",
    "put_writes_job",
    "release_lease",
]


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
        dumps(record.channel_versions),
        bytes(record.header),
        dumps(record.metadata),
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
                (t, ns, cid, now()),
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
