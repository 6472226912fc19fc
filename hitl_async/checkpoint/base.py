"""The driver protocol: the narrow, byte-level interface every checkpoint store implements.

The engine serializes everything itself; a driver only stores and returns bytes plus a few plain
fields it must understand (ids, versions, metadata for filtering). One superstep is one `commit()`:
a new checkpoint, only the channel blobs that changed, and optionally pending writes, applied
atomically and only if the thread's head is still the one the run started from.

Storage model (per thread and checkpoint namespace):
- a *head* pointer: the id of the newest checkpoint (where leases and run state can live later);
- checkpoints: `CheckpointRecord`s, newest first by id (ids are time-ordered strings);
- blobs: `(channel, version) -> bytes`; a checkpoint's `channel_versions` names the blob of each
  channel, so an unchanged channel is stored once however many checkpoints refer to it;
- writes: `(checkpoint_id, task_id, idx) -> WriteRecord`, the pending writes of the step that
  runs from a checkpoint; writing the same key again replaces the row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Self

__all__ = [
    "BaseSaver",
    "BlobRecord",
    "CheckpointRecord",
    "Commit",
    "InboxEntry",
    "Lease",
    "LoadedCheckpoint",
    "RunRequest",
    "WriteRecord",
    "prune_cutoff",
]


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """One checkpoint as a driver stores it.

    `metadata` is JSON-safe (str keys; str, int, float, bool, None, lists and dicts of those) so a
    driver may store it natively and filter on it. `header` is opaque engine data. `created_at`
    is UTC ISO-8601 with microseconds (`2026-11-24T09:33:10.955979+00:00`), so it sorts as text.
    """

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    created_at: str
    channel_versions: Mapping[str, str]
    header: bytes
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """The serialized value of one channel at one version."""

    channel: str
    version: str
    data: bytes


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One pending write of a task, keyed by `(task_id, idx)` within its checkpoint."""

    task_id: str
    idx: int
    channel: str
    data: bytes
    task_path: str = ""


@dataclass(frozen=True, slots=True)
class LoadedCheckpoint:
    """A checkpoint with the blobs of all its channels and its pending writes (any order)."""

    record: CheckpointRecord
    blobs: Mapping[str, bytes]
    writes: Sequence[WriteRecord]


@dataclass(frozen=True, slots=True)
class Commit:
    """The arguments of one `commit()`, for `commit_many()`."""

    record: CheckpointRecord
    blobs: Sequence[BlobRecord]
    expected_head: str | None
    writes: Sequence[WriteRecord] = ()
    inbox: Sequence[InboxEntry] | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to write a thread, held by one run at a time.

    `token` is a fencing token: it grows by one on every successful `acquire_lease` of the
    thread, and every write made under a lease is checked against the thread's current token, so
    a run that lost its lease (paused, partitioned, expired and taken over) cannot write.
    `expires_at` is in seconds since the epoch by the store's clock.
    """

    thread_id: str
    owner: str
    token: int
    expires_at: float
    graph: str = ""


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One interrupt waiting for a human, as the inbox index keeps it.

    `value` and `on_timeout` are serialized by the engine (opaque to drivers); `deadline` is in
    seconds since the epoch (None: no deadline).
    """

    thread_id: str
    interrupt_id: str
    checkpoint_ns: str
    node: str
    value: bytes
    created_at: str
    deadline: float | None = None
    on_timeout: bytes | None = None
    graph: str = ""


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A queued run: `payload` (engine-serialized input and options) for `graph` on a thread.

    `status` moves queued -> running -> done | failed, or queued -> cancelled. A running request
    whose claim expired (`claim_expires` passed, by the store's clock) can be claimed again.
    """

    id: str
    queue: str
    thread_id: str
    payload: bytes
    status: str = "queued"
    created_at: str = ""
    owner: str | None = None
    claim_expires: float | None = None
    attempts: int = 0
    result: bytes | None = None
    error: str | None = None


def prune_cutoff(keep_last: int | None, newer_than: datetime | None) -> str | None:
    """Check `prune()`'s arguments for a driver; return `newer_than` as UTC ISO-8601 text (as
    `CheckpointRecord.created_at` is stored, so the two compare as text), or None."""
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    if newer_than is None:
        return None
    if newer_than.tzinfo is None:
        newer_than = newer_than.replace(tzinfo=UTC)
    return newer_than.astimezone(UTC).isoformat(timespec="microseconds")


class BaseSaver(ABC):
    """Base class of checkpoint stores (drivers). Subclass it to add a store.

    Every method is a coroutine run in the caller's event loop; a driver connects lazily on first
    use, so constructing one never does I/O. A driver must be usable from several tasks at once.
    """

    io_free: ClassVar[bool] = False
    """True when a commit completes without I/O, so the scheduler need not overlap it."""

    supports_coordination: ClassVar[bool] = False
    """True when the driver implements leases, the inbox index and the run queue (below)."""

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """Create tables/keys if needed; idempotent. Called lazily by drivers that need it."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The saver may not be used afterwards."""

    async def destroy(self) -> None:  # noqa: B027 - optional hook
        """Delete everything this saver stored (its rows, schema or key prefix): for tests and
        teardown, never called by the engine."""

    async def __aenter__(self) -> Self:
        await self.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
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
        """Store a new checkpoint atomically and make it the head of its namespace.

        Only if the current head of `(record.thread_id, record.checkpoint_ns)` is `expected_head`
        (`None`: the namespace has no checkpoint yet); otherwise raise
        `hitl_async.CheckpointConflictError` and store nothing. A `checkpoint_id` that already
        exists is a conflict too. `blobs` are only the channels that changed; `writes` (if any)
        become the new checkpoint's pending writes.

        With `lease`, the write happens only if the thread's current lease token is
        `lease.token` and it has not expired; otherwise `hitl_async.LeaseLostError` and nothing
        is stored. With `inbox` (not None), the thread's inbox entries (all namespaces) are
        replaced by these, in the same atomic step.
        """

    async def commit_many(
        self, commits: Sequence[Commit], *, lease: Lease | None = None, release: bool = False
    ) -> None:
        """Commit a chain of checkpoints of one thread in order (each one's `expected_head` is
        the previous one's id), as `commit()` would one by one; stop at the first failure and
        raise it. With `release`, then release `lease` (the run ends). Drivers override it to
        write the chain (and the release) in one round trip."""
        for c in commits:
            if self.supports_coordination:
                await self.commit(
                    c.record,
                    c.blobs,
                    expected_head=c.expected_head,
                    writes=c.writes,
                    lease=lease,
                    inbox=c.inbox,
                )
            else:
                await self.commit(c.record, c.blobs, expected_head=c.expected_head, writes=c.writes)
        if release and lease is not None:
            await self.release_lease(lease)

    @abstractmethod
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
        """Store pending writes of finished tasks against a checkpoint (upsert by task id, idx).

        `lease` and `inbox` as in `commit()`, checked and applied in the same atomic step.
        """

    @abstractmethod
    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        """The head (or the given checkpoint) with its blobs and pending writes, in one round trip.

        `None` when it does not exist.
        """

    @abstractmethod
    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        """Checkpoints newest first; only ids `< before`; at most `limit` (0: none); metadata
        `filter` matches when every key is present with a value equal by Python's `==` (so
        `1 == 1.0 == True`, and dicts compare regardless of key order)."""

    @abstractmethod
    async def delete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint, blob and write of the thread, in every namespace."""

    @abstractmethod
    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        """Delete old checkpoints of a thread; return how many were deleted.

        In each namespace a checkpoint survives if it is among the `keep_last` newest, or created
        after `newer_than`, or is the head (the head holds any pending interrupt, so a paused
        thread stays resumable). Blobs no kept checkpoint refers to and writes of deleted
        checkpoints go too. With neither argument, nothing is deleted.
        """

    @abstractmethod
    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        """Ids of threads that have at least one checkpoint, in no guaranteed order."""

    # -- coordination: leases, the inbox index and the run queue ---------------------------------
    # Optional: a driver that implements them sets `supports_coordination = True`. Every method
    # is atomic on its own; "now" is the store's clock.

    def _unsupported(self, what: str) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} does not support {what}; use a driver with "
            "supports_coordination (memory, sqlite, postgresql, redis)"
        )

    async def acquire_lease(
        self, thread_id: str, owner: str, ttl: float, *, graph: str = ""
    ) -> Lease:
        """Take the thread's lease for `ttl` seconds with the next fencing token.

        Succeeds if nobody holds it, the holder released it, or it expired; otherwise raises
        `hitl_async.ThreadBusyError` naming the holder and when its lease expires. `graph` names
        the graph running the thread, so recovery knows which graph continues it.
        """
        raise self._unsupported("leases")

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
        """`acquire_lease` then `load`, as one operation: how every run starts. Drivers
        override it to do both in one round trip."""
        lease = await self.acquire_lease(thread_id, owner, ttl, graph=graph)
        return lease, await self.load(thread_id, checkpoint_ns, checkpoint_id)

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend a held lease (same token) by `ttl` seconds from now; `LeaseLostError` if the
        thread's token is no longer `lease.token` or the lease was released."""
        raise self._unsupported("leases")

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up if it is still this one (same token); otherwise do nothing."""
        raise self._unsupported("leases")

    async def expired_leases(self, *, graph: str | None = None, limit: int = 100) -> list[Lease]:
        """Leases not released whose expiry passed (runs whose process died), oldest expiry
        first; only those of `graph` if given."""
        raise self._unsupported("leases")

    async def list_inbox(
        self,
        *,
        thread_id: str | None = None,
        node: str | None = None,
        graph: str | None = None,
        due_before: float | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int = 100,
    ) -> list[InboxEntry]:
        """Pending interrupts across threads, read from the index (never from checkpoints).

        Ordered by (created_at, thread_id, interrupt_id); `after` is the last entry's triple of
        the previous page. `due_before`: only entries with a deadline before it.
        """
        raise self._unsupported("the inbox")

    async def enqueue(self, request: RunRequest) -> None:
        """Store a queued run request (and wake a waiting worker)."""
        raise self._unsupported("the run queue")

    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        """Claim the oldest runnable request of `queue` for `ttl` seconds: queued, or running
        with an expired claim; never one whose thread has another running request. Marks it
        running by `owner` (attempts + 1). None when there is none."""
        raise self._unsupported("the run queue")

    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        """Extend a claim held by `owner`; False if it is no longer held."""
        raise self._unsupported("the run queue")

    async def finish_request(
        self,
        request_id: str,
        owner: str | None,
        status: str,
        *,
        result: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        """Set a final status (done, failed, cancelled; or queued to give it back). With an
        `owner`, only if that owner holds it; `None` acts regardless (a cancel of a queued
        request). Returns whether it changed."""
        raise self._unsupported("the run queue")

    async def get_request(self, request_id: str) -> RunRequest | None:
        raise self._unsupported("the run queue")

    async def wait_for_work(self, queue: str, timeout: float) -> None:
        """Return when a request may be claimable in `queue`, or after `timeout` seconds."""
        raise self._unsupported("the run queue")

    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        """Return when the thread may have changed (a commit or writes), or after `timeout`."""
        raise self._unsupported("change notifications")
