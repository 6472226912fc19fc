"""Checkpoint storage on SQLite (`BaseSaver`): each operation one job or read of `_writes` /
`_ops`, one thread hop; writes are grouped with the others queued beside them (group commit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    Commit,
    InboxEntry,
    Lease,
    LoadedCheckpoint,
    WriteRecord,
    prune_cutoff,
)
from hitl_async.checkpoint.ids import check_id
from hitl_async_sqlite import _ops, _writes
from hitl_async_sqlite._connection import SqliteConnection
from hitl_async_sqlite._watch import thread_key

__all__ = ["SqliteCheckpoints"]


class SqliteCheckpoints(SqliteConnection, BaseSaver):
    """Checkpoints, blobs and pending writes; every commit fenced by its lease and replacing the
    thread's inbox in its own transaction."""

    any_loop = True
    """Usable from any event loop of the process at once (see `BaseSaver.any_loop`)."""

    async def commit(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        *,
        expected_head: str | None,
        writes: Sequence[WriteRecord] = (),
        lease: Lease | None = None,
        inbox: Sequence[InboxEntry] | None = None,
    ) -> None:
        """Store a checkpoint and move the head, iff the head is `expected_head` and `lease` (if
        given) is still live; replace the thread's inbox with `inbox` (see BaseSaver)."""
        check_id("thread id", record.thread_id)
        job = _writes.commit_job(record, blobs, expected_head, writes, lease, inbox)
        await self._write(job, thread_key(record.thread_id))

    async def commit_many(
        self, commits: Sequence[Commit], *, lease: Lease | None = None, release: bool = False
    ) -> None:
        """Commit a chain in one hop and one transaction, all or nothing: on a lease or head
        failure nothing of the chain is stored and that failure is raised. With `release`, the
        lease is released in the same transaction (only if the chain was written)."""
        for c in commits:
            check_id("thread id", c.record.thread_id)
        threads = [c.record.thread_id for c in commits]
        if release and lease is not None:
            threads.append(lease.thread_id)
        if not threads:
            return
        keys = tuple(dict.fromkeys(thread_key(t) for t in threads))
        await self._write(_writes.commit_many_job(commits, lease, release), *keys)

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        *,
        lease: Lease | None = None,
        inbox: Sequence[InboxEntry] | None = None,
    ) -> None:
        """Upsert pending writes by `(task_id, idx)`, fenced by `lease`, replacing the inbox."""
        check_id("thread id", thread_id)
        if writes or lease is not None or inbox is not None:
            job = _writes.put_writes_job(
                thread_id, checkpoint_ns, checkpoint_id, writes, lease, inbox
            )
            await self._write(job, thread_key(thread_id))

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        """The head (or `checkpoint_id`) with its blobs and writes, in one hop; else `None`."""
        check_id("thread id", thread_id)
        return await self._read(_ops.load, thread_id, checkpoint_ns, checkpoint_id)

    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        """Checkpoints newest first; `< before`; metadata `filter`; at most `limit`."""
        check_id("thread id", thread_id)
        return await self._read(_ops.history, thread_id, checkpoint_ns, before, limit, filter)

    async def thread_namespaces(self, thread_id: str) -> list[str]:
        """The namespaces in which the thread has a checkpoint, sorted."""
        check_id("thread id", thread_id)
        return await self._read(_ops.thread_namespaces, thread_id)

    async def delete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint row and inbox entry of the thread (its lease row stays, so
        fencing tokens keep growing)."""
        check_id("thread id", thread_id)
        await self._write(_writes.delete_thread_job(thread_id), thread_key(thread_id))

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        """Delete old checkpoints (heads always kept), their writes and orphaned blobs."""
        check_id("thread id", thread_id)
        if keep_last is None and newer_than is None:
            return 0
        cutoff = prune_cutoff(keep_last, newer_than)
        removed: int = await self._write(_writes.prune_job(thread_id, keep_last, cutoff))
        return removed

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        """Ids of threads with at least one checkpoint."""
        return await self._read(_ops.list_threads, limit)
