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
from typing import TYPE_CHECKING, Any, ClassVar, Self

from hitl_async.checkpoint.tuples import CheckpointTuple, LangGraphReads

if TYPE_CHECKING:
    from hitl_async.checkpoint.capabilities import Capability

__all__ = [
    "BaseCheckpointSaver",
    "BaseSaver",
    "BlobRecord",
    "ChannelVersions",
    "Checkpoint",
    "CheckpointMetadata",
    "CheckpointRecord",
    "CheckpointTuple",
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
    damaged: str | None = None
    """Set by a driver that found this row damaged: what is wrong with it. The fields it could
    not read are empty; the engine reports the entry instead of failing the whole inbox."""


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
    damaged: str | None = None
    """Set by `RunQueueStore.list_requests` for a row found damaged in the store: what is wrong
    with it (the fields it could not read are empty). Never set on a request a worker claims."""


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


class BaseSaver(LangGraphReads, ABC):
    """The storage capability: the base class of every checkpoint store (driver).

    Subclass it to add a store; that is all the engine needs to run graphs, pause on
    `interrupt()` and resume. The other capabilities are ABCs in `hitl_async.checkpoint.
    capabilities` (`LeaseStore`, `InboxStore`, `RunQueueStore`, `ChangeFeed`): a driver also
    subclasses those it implements, and `supports()` / `capabilities` answer "can this store do
    X" (the engine checks once, and a feature the store lacks is a `MissingCapabilityError`).

    Every method is a coroutine run in the caller's event loop; a driver connects lazily on first
    use, so constructing one never does I/O. A driver must be usable from several tasks at once.
    A store without `LeaseStore` is never given a `lease`, one without `InboxStore` never an
    `inbox` (both stay None), so it may ignore those arguments.

    Every saver also reads as LangGraph's do (`get_tuple`, `list`, `get` and `aget_tuple`,
    `alist`, `aget`; see `hitl_async.checkpoint.tuples`), built on `load` and `history`.
    """

    io_free: ClassVar[bool] = False
    """True when a commit completes without I/O, so the scheduler need not overlap it."""

    any_loop: ClassVar[bool] = False
    """True when the store works from any event loop of the process at once (one pool per
    loop, as the sync API needs): `ainvoke` of an all-sync graph may then run on an engine
    thread's loop (`_offload`)."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this store implements (always `Capability.STORAGE`, plus the capability ABCs
        its class subclasses)."""
        from hitl_async.checkpoint.capabilities import capabilities_of

        return capabilities_of(self)

    def supports(self, capability: Capability) -> bool:
        """Whether this store implements `capability`."""
        return capability in self.capabilities

    @property
    def supports_coordination(self) -> bool:
        """Compatibility alias: leases, the inbox and the run queue all supported. Prefer
        `supports(Capability.LEASES)` etc."""
        from hitl_async.checkpoint.capabilities import COORDINATION

        return self.capabilities >= COORDINATION

    async def setup(self) -> None:
        """Create tables/keys if needed; idempotent. Called lazily by drivers that need it."""

    async def aclose(self) -> None:
        """Release connections. The saver may not be used afterwards."""

    async def destroy(self) -> None:
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
            await self.commit(
                c.record,
                c.blobs,
                expected_head=c.expected_head,
                writes=c.writes,
                lease=lease,
                inbox=c.inbox,
            )
        if release and lease is not None:
            from hitl_async.checkpoint.capabilities import LeaseStore

            if isinstance(self, LeaseStore):
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

    async def thread_namespaces(self, thread_id: str) -> list[str]:
        """The checkpoint namespaces in which the thread has a checkpoint (the root `""` and
        each subgraph call's), sorted: what LangGraph's `list(config)` without a
        `checkpoint_ns` reads. Drivers override it; this default says which driver lacks it."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement thread_namespaces(), so it cannot list "
            "the checkpoints of every namespace of a thread: pass "
            "config={'configurable': {'thread_id': ..., 'checkpoint_ns': ''}} to list one "
            "namespace, or implement thread_namespaces() in the driver"
        )

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


# LangGraph's names (`langgraph.checkpoint.base`), for code ported from it: annotations of
# fixtures and helpers, and the tuples `get_tuple`/`list` return.
BaseCheckpointSaver = BaseSaver
"""LangGraph's checkpointer base class: every saver here is a `BaseSaver`."""
Checkpoint = dict[str, Any]
"""A checkpoint as `get_tuple(...).checkpoint` shows it (LangGraph's TypedDict: v, id, ts,
channel_values, channel_versions, versions_seen)."""
CheckpointMetadata = dict[str, Any]
"""A checkpoint's metadata (source, step, parents, and the run's own keys)."""
ChannelVersions = dict[str, Any]
"""Channel name to version, as in `Checkpoint["channel_versions"]`."""
