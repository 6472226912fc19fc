"""`PostgresStorage`: the checkpoint storage of `PostgresSaver` (`BaseSaver`): commits, pending
writes, loads, history, deletes and pruning, each one statement (see `saver`'s notes)."""

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
from hitl_async.errors import CheckpointConflictError, LeaseLostError
from hitl_async_postgres._calls import ChainCall, PutWritesCall
from hitl_async_postgres._connections import PostgresConnections
from hitl_async_postgres._rows import (
    bools_as_ints,
    check_text,
    dumps,
    inbox_columns,
    lease_token,
    loaded,
    one,
)

__all__ = ["PostgresStorage"]


class PostgresStorage(PostgresConnections, BaseSaver):
    """Checkpoints in tables `threads`, `checkpoints`, `blobs` and `writes`."""

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
        check_text("thread_id", record.thread_id)
        check_text("checkpoint_ns", record.checkpoint_ns)
        token = lease_token(record.thread_id, lease)
        inbox_arrays = inbox_columns(record.thread_id, inbox)
        blob_map = {(b.channel, b.version): b.data for b in blobs}  # last one wins, like memory
        write_map = {(w.task_id, w.idx): w for w in writes}
        pool = await self._pool()
        row = one(
            await pool.fetchrow(
                self._q.commit,
                record.thread_id,
                record.checkpoint_ns,
                expected_head,
                record.checkpoint_id,
                record.parent_id,
                record.created_at,
                dumps(dict(record.channel_versions)),
                record.header,
                dumps(dict(record.metadata)),
                [channel for channel, _ in blob_map],
                [version for _, version in blob_map],
                list(blob_map.values()),
                [w.task_id for w in write_map.values()],
                [w.idx for w in write_map.values()],
                [w.channel for w in write_map.values()],
                [w.data for w in write_map.values()],
                [w.task_path for w in write_map.values()],
                token,
                *inbox_arrays,
            ),
            record.thread_id,
        )
        if not row["lease_ok"]:
            assert lease is not None
            raise LeaseLostError(record.thread_id, lease.token, row["lease_current"])
        if not row["ok"]:
            if row["actual"] == expected_head:  # the head matched: the id is already stored
                raise CheckpointConflictError.duplicate(
                    record.thread_id,
                    record.checkpoint_ns,
                    record.checkpoint_id,
                    expected_head,
                    expected_head,
                )
            raise CheckpointConflictError(
                record.thread_id, record.checkpoint_ns, expected_head, row["actual"]
            )

    async def commit_many(
        self, commits: Sequence[Commit], *, lease: Lease | None = None, release: bool = False
    ) -> None:
        """The chain in one call of `hitl_commit_many`, all or nothing: the lease is checked
        once, then the head, each link and each id, before anything is written; the first
        failure is raised (as `commit()` one by one would raise it) with nothing stored. With
        `release`, the lease is released in the same transaction once the chain is written.
        A chain spanning namespaces goes commit by commit (the engine never writes one)."""
        if not commits:  # nothing to write: BaseSaver's loop only releases the lease, if asked
            await super().commit_many(commits, lease=lease, release=release)
            return
        first = commits[0].record
        thread_id, ns = first.thread_id, first.checkpoint_ns
        if any(c.record.thread_id != thread_id or c.record.checkpoint_ns != ns for c in commits):
            await super().commit_many(commits, lease=lease, release=release)
            return
        check_text("thread_id", thread_id)
        check_text("checkpoint_ns", ns)
        token = lease_token(thread_id, lease)
        inbox: Sequence[InboxEntry] | None = None
        for c in commits:  # the last replacement is the one that stays; all must be valid
            if c.inbox is not None:
                inbox_columns(thread_id, c.inbox)
                inbox = c.inbox
        records = [c.record for c in commits]
        blob_rows: list[tuple[str, str, bytes]] = []
        blob_ends: list[int] = []
        write_rows: list[WriteRecord] = []
        write_ends: list[int] = []
        for c in commits:
            blob_map = {(b.channel, b.version): b.data for b in c.blobs}  # last one wins
            blob_rows += [(channel, version, data) for (channel, version), data in blob_map.items()]
            blob_ends.append(len(blob_rows))
            write_rows += {(w.task_id, w.idx): w for w in c.writes}.values()
            write_ends.append(len(write_rows))
        call = ChainCall(
            thread_id,
            ns,
            token,
            release and lease is not None,
            [c.expected_head for c in commits],
            [r.checkpoint_id for r in records],
            [r.parent_id for r in records],
            [r.created_at for r in records],
            [dumps(dict(r.channel_versions)) for r in records],
            [r.header for r in records],
            [dumps(dict(r.metadata)) for r in records],
            blob_ends,
            [b[0] for b in blob_rows],
            [b[1] for b in blob_rows],
            [b[2] for b in blob_rows],
            write_ends,
            [w.task_id for w in write_rows],
            [w.idx for w in write_rows],
            [w.channel for w in write_rows],
            [w.data for w in write_rows],
            [w.task_path for w in write_rows],
            None if inbox is None else inbox_columns(thread_id, inbox),  # type: ignore[arg-type]
        )
        entry = await self._entry()
        if entry.commits is not None:
            row = await entry.commits.submit(call)
        else:
            row = one(await entry.pool.fetchrow(self._q.commit_many, *call.args()), thread_id)
        if not row["lease_ok"]:
            assert lease is not None
            raise LeaseLostError(thread_id, lease.token, row["lease_current"])
        if not row["ok"]:
            failed = commits[row["failed"]]
            if row["actual"] == failed.expected_head:  # the head matched: the id is taken
                raise CheckpointConflictError.duplicate(
                    failed.record.thread_id,
                    failed.record.checkpoint_ns,
                    failed.record.checkpoint_id,
                    failed.expected_head,
                    failed.expected_head,
                )
            raise CheckpointConflictError(thread_id, ns, failed.expected_head, row["actual"])

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
        check_text("thread_id", thread_id)
        check_text("checkpoint_ns", checkpoint_ns)
        if not writes and lease is None and inbox is None:
            return
        token = lease_token(thread_id, lease)
        write_map = {(w.task_id, w.idx): w for w in writes}
        call = PutWritesCall(
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            [w.task_id for w in write_map.values()],
            [w.idx for w in write_map.values()],
            [w.channel for w in write_map.values()],
            [w.data for w in write_map.values()],
            [w.task_path for w in write_map.values()],
            token,
            None if inbox is None else inbox_columns(thread_id, inbox),  # type: ignore[arg-type]
        )
        entry = await self._entry()
        if entry.puts is not None:
            row = await entry.puts.submit(call)
        else:
            row = one(await entry.pool.fetchrow(self._q.put_writes, *call.args()), thread_id)
        if not row["lease_ok"]:
            assert lease is not None
            raise LeaseLostError(thread_id, lease.token, row["lease_current"])

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        check_text("thread_id", thread_id)
        check_text("checkpoint_ns", checkpoint_ns)
        pool = await self._pool()
        if checkpoint_id:
            check_text("checkpoint_id", checkpoint_id)
            row = await pool.fetchrow(self._q.load_id, thread_id, checkpoint_ns, checkpoint_id)
        else:
            row = await pool.fetchrow(self._q.load_head, thread_id, checkpoint_ns)
        return None if row is None else loaded(thread_id, checkpoint_ns, row)

    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        check_text("thread_id", thread_id)
        check_text("checkpoint_ns", checkpoint_ns)
        args: list[Any] = [thread_id, checkpoint_ns, None if limit is None else max(limit, 0)]
        if before is not None:
            check_text("before", before)
            args.append(before)
        exact = {k: v for k, v in (filter or {}).items() if v is None or isinstance(v, str)}
        loose = {k: bools_as_ints(v) for k, v in (filter or {}).items() if k not in exact}
        if exact:
            args.append(dumps(exact))
        if loose:
            args.append(dumps(loose))
        sql = self._q.history(before=before is not None, exact=bool(exact), loose=bool(loose))
        pool = await self._pool()
        rows = await pool.fetch(sql, *args)
        return [loaded(thread_id, checkpoint_ns, row) for row in rows]

    async def thread_namespaces(self, thread_id: str) -> list[str]:
        check_text("thread_id", thread_id)
        pool = await self._pool()
        rows = await pool.fetch(self._q.thread_namespaces, thread_id)
        return [row["checkpoint_ns"] for row in rows]

    async def delete_thread(self, thread_id: str) -> None:
        check_text("thread_id", thread_id)
        pool = await self._pool()
        await pool.execute(self._q.delete_thread, thread_id)

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        check_text("thread_id", thread_id)
        if keep_last is None and newer_than is None:
            return 0
        cutoff = prune_cutoff(keep_last, newer_than)
        pool = await self._pool()
        removed = await pool.fetchval(self._q.prune, thread_id, keep_last, cutoff)
        return int(removed)

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        pool = await self._pool()
        rows = await pool.fetch(self._q.list_threads, None if limit is None else max(limit, 0))
        return [row["thread_id"] for row in rows]
