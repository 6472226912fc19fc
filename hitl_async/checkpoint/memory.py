"""`InMemorySaver`: the reference driver, keeping serialized checkpoints in process memory."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hitl_async.checkpoint._memory_coordination import MemoryCoordination
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
from hitl_async.checkpoint.capabilities import (
    CacheStore,
    ChangeFeed,
    InboxStore,
    LeaseStore,
    RunQueueStore,
)
from hitl_async.checkpoint.ids import check_id
from hitl_async.checkpoint.lifecycle import after_fork_in_child
from hitl_async.checkpoint.rows import metadata_matches
from hitl_async.errors import CheckpointConflictError, SerializationError

__all__ = ["InMemorySaver", "MemorySaver"]


@dataclass(slots=True)
class _Namespace:
    head: str | None = None
    checkpoints: dict[str, CheckpointRecord] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # ascending ids
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    writes: dict[str, dict[tuple[str, int], WriteRecord]] = field(default_factory=dict)


def _where(record: CheckpointRecord) -> str:
    ns = f" (namespace {record.checkpoint_ns!r})" if record.checkpoint_ns else ""
    return f"thread {record.thread_id!r}{ns}"


def _missing_blob(record: CheckpointRecord, channel: str, version: str) -> SerializationError:
    """A checkpoint naming a blob that is not stored: the store is corrupt."""
    return SerializationError(
        f"{_where(record)}, checkpoint {record.checkpoint_id!r}: no blob for channel "
        f"{channel!r} at version {version!r}; the checkpoint store is corrupt"
    )


class InMemorySaver(
    MemoryCoordination, BaseSaver, LeaseStore, InboxStore, RunQueueStore, ChangeFeed, CacheStore
):
    """Checkpoints in a dict, serialized exactly as the durable drivers store them.

    For tests and single-process use: everything is lost when the process exits.
    """

    io_free = True
    any_loop = True

    def __init__(self) -> None:
        self._threads: dict[str, dict[str, _Namespace]] = {}
        self._lock = threading.Lock()
        self._init_coordination()
        after_fork_in_child(self, _fresh_lock)

    def _ns(self, thread_id: str, checkpoint_ns: str, create: bool = False) -> _Namespace | None:
        spaces = self._threads.get(thread_id)
        if spaces is None:
            if not create:
                return None
            spaces = self._threads[thread_id] = {}
        ns = spaces.get(checkpoint_ns)
        if ns is None and create:
            ns = spaces[checkpoint_ns] = _Namespace()
        return ns

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
        check_id("thread id", record.thread_id)
        with self._lock:
            self._check_lease(record.thread_id, lease)
            self._commit_locked(record, blobs, expected_head, writes, inbox)

    async def commit_many(
        self, commits: Sequence[Commit], *, lease: Lease | None = None, release: bool = False
    ) -> None:
        """The chain under one lock acquisition (one fencing check), then the release."""
        for c in commits:
            check_id("thread id", c.record.thread_id)
        if not commits:
            if release and lease is not None:
                await self.release_lease(lease)
            return
        with self._lock:
            self._check_lease(commits[0].record.thread_id, lease)
            for c in commits:
                self._commit_locked(c.record, c.blobs, c.expected_head, c.writes, c.inbox)
            if release and lease is not None:
                self._release_locked(lease)

    def _commit_locked(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        expected_head: str | None,
        writes: Sequence[WriteRecord],
        inbox: Sequence[InboxEntry] | None,
    ) -> None:
        existing = self._ns(record.thread_id, record.checkpoint_ns)
        head = existing.head if existing is not None else None
        if head != expected_head:
            raise CheckpointConflictError(
                record.thread_id, record.checkpoint_ns, expected_head, head
            )
        if existing is not None and record.checkpoint_id in existing.checkpoints:
            raise CheckpointConflictError.duplicate(
                record.thread_id,
                record.checkpoint_ns,
                record.checkpoint_id,
                expected_head,
                head,
            )
        ns = existing or self._ns(record.thread_id, record.checkpoint_ns, create=True)
        assert ns is not None
        for blob in blobs:
            ns.blobs[(blob.channel, blob.version)] = blob.data
        ns.checkpoints[record.checkpoint_id] = record
        bisect.insort(ns.order, record.checkpoint_id)
        ns.head = record.checkpoint_id
        if writes:
            ns.writes[record.checkpoint_id] = {(w.task_id, w.idx): w for w in writes}
        self._set_inbox(record.thread_id, inbox)
        self._changed(record.thread_id)

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
        check_id("thread id", thread_id)
        with self._lock:
            self._check_lease(thread_id, lease)
            ns = self._ns(thread_id, checkpoint_ns, create=True)
            assert ns is not None
            rows = ns.writes.setdefault(checkpoint_id, {})
            for w in writes:
                rows[(w.task_id, w.idx)] = w
            self._set_inbox(thread_id, inbox)
            self._changed(thread_id)

    def _loaded(self, ns: _Namespace, checkpoint_id: str) -> LoadedCheckpoint:
        record = ns.checkpoints[checkpoint_id]
        blobs: dict[str, bytes] = {}
        for ch, v in record.channel_versions.items():
            data = ns.blobs.get((ch, v))
            if data is None:
                raise _missing_blob(record, ch, v)
            blobs[ch] = data
        writes = list(ns.writes.get(checkpoint_id, {}).values())
        return LoadedCheckpoint(record, blobs, writes)

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        check_id("thread id", thread_id)
        with self._lock:
            ns = self._ns(thread_id, checkpoint_ns)
            if ns is None:
                return None
            target = checkpoint_id or ns.head
            if target is None or target not in ns.checkpoints:
                return None
            return self._loaded(ns, target)

    async def acquire_and_load(
        self,
        thread_id: str,
        owner: str,
        ttl: float,
        *,
        graph: str = "",
        checkpoint_ns: str = "",
        checkpoint_id: str | None = None,
    ) -> tuple[Lease, LoadedCheckpoint | None]:
        """The lease and the checkpoint under one lock acquisition."""
        check_id("thread id", thread_id)
        with self._lock:
            lease = self._acquire_locked(thread_id, owner, ttl, graph)
            ns = self._ns(thread_id, checkpoint_ns)
            if ns is None:
                return lease, None
            target = checkpoint_id or ns.head
            if target is None or target not in ns.checkpoints:
                return lease, None
            return lease, self._loaded(ns, target)

    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        check_id("thread id", thread_id)
        with self._lock:
            ns = self._ns(thread_id, checkpoint_ns)
            if ns is None:
                return []
            out: list[LoadedCheckpoint] = []
            if limit is not None and limit <= 0:
                return out
            for cid in reversed(ns.order):
                if before is not None and cid >= before:
                    continue
                if not metadata_matches(ns.checkpoints[cid].metadata, filter):
                    continue
                out.append(self._loaded(ns, cid))
                if limit is not None and len(out) >= limit:
                    break
            return out

    async def thread_namespaces(self, thread_id: str) -> list[str]:
        check_id("thread id", thread_id)
        with self._lock:
            spaces = self._threads.get(thread_id, {})
            return sorted(name for name, ns in spaces.items() if ns.head is not None)

    async def delete_thread(self, thread_id: str) -> None:
        check_id("thread id", thread_id)
        with self._lock:
            self._threads.pop(thread_id, None)
            self._forget_thread(thread_id)

    async def destroy(self) -> None:
        with self._lock:
            self._threads.clear()
            self._init_coordination()

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        check_id("thread id", thread_id)
        if keep_last is None and newer_than is None:
            return 0
        cutoff = prune_cutoff(keep_last, newer_than)
        removed = 0
        with self._lock:
            for ns in self._threads.get(thread_id, {}).values():
                newest = set(ns.order[-keep_last:]) if keep_last else set()
                keep = [
                    cid
                    for cid in ns.order
                    if cid == ns.head
                    or cid in newest
                    or (cutoff is not None and ns.checkpoints[cid].created_at > cutoff)
                ]
                removed += len(ns.order) - len(keep)
                kept = set(keep)
                for cid in ns.order:
                    if cid not in kept:
                        del ns.checkpoints[cid]
                        ns.writes.pop(cid, None)
                ns.order = keep
                live = {
                    (ch, v)
                    for cid in keep
                    for ch, v in ns.checkpoints[cid].channel_versions.items()
                }
                ns.blobs = {k: b for k, b in ns.blobs.items() if k in live}
        return removed

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        with self._lock:
            ids = [t for t, spaces in self._threads.items() if any(n.head for n in spaces.values())]
        return ids[:limit] if limit is not None else ids


def _fresh_lock(saver: InMemorySaver) -> None:
    """In a forked child: a new lock (another thread may have held the parent's at the fork);
    the child keeps its copy of the data, as any forked memory."""
    saver._lock = threading.Lock()


MemorySaver = InMemorySaver
"""LangGraph's older name for `InMemorySaver`."""
