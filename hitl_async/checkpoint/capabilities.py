"""What a checkpoint store can do: one small ABC per capability, and how to ask.

Every store implements storage (`BaseSaver`: checkpoints, blobs, pending writes). The rest is
optional, one capability each, so a new driver can start with storage alone:

- `LEASES`, `LeaseStore`: acquire_lease, acquire_and_load, renew_lease, release_lease,
  expired_leases. One writer per thread (fencing), `stream(wait=)`, `recover()`.
- `INBOX`, `InboxStore`: list_inbox (an `InboxQuery`). `inbox()`, interrupt deadlines.
- `RUN_QUEUE`, `RunQueueStore`: enqueue, claim_request, renew_claim, finish_request,
  get_request, list_requests (a `RunQuery`), wait_for_work. `submit()`, `Worker`, `hitl runs`.
- `CHANGE_NOTIFICATION`, `ChangeFeed`: wait_for_change. `wait_for()`, prompt wake-ups.
- `CACHE`, `CacheStore`: cache_get, cache_set, cache_clear. `compile(cache=saver)`: node and
  `@task` results cached in the store, shared by every process using it.

A driver declares a capability by subclassing its ABC (`class MySaver(BaseSaver, LeaseStore)`);
`capabilities_of(saver)` and `saver.supports(Capability.LEASES)` answer "can this store do X",
and `require(saver, ..., needed_for="submit()")` raises `MissingCapabilityError` naming the store
and what it lacks. A store without leases runs graphs with no fencing (as LangGraph's savers do):
the engine never passes it a lease, and never an inbox without `INBOX`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from hitl_async.checkpoint.base import BaseSaver, InboxEntry, Lease, LoadedCheckpoint, RunRequest
from hitl_async.errors import MissingCapabilityError

__all__ = [
    "COORDINATION",
    "CacheStore",
    "Capability",
    "ChangeFeed",
    "InboxQuery",
    "InboxStore",
    "LeaseStore",
    "RunQuery",
    "RunQueueStore",
    "capabilities_of",
    "inbox_order",
    "require",
    "run_order",
]


class Capability(StrEnum):
    """A feature a checkpoint store may implement (its value names it in error messages)."""

    STORAGE = "storage"
    LEASES = "leases"
    INBOX = "inbox"
    RUN_QUEUE = "run queue"
    CHANGE_NOTIFICATION = "change notification"
    CACHE = "cache"


class LeaseStore(ABC):
    """Leases with fencing: one writer per thread. Every method is atomic on its own; "now" is
    the store's clock.

    A write (`commit`, `commit_many`, `put_writes`) given a `lease` happens only if the thread's
    current token is `lease.token` and the lease was not released; otherwise it raises
    `LeaseLostError` and stores nothing. A lease that merely expired, with nobody having taken
    the thread since (same token), still writes and renews: only a take-over fences a run out.
    """

    @abstractmethod
    async def acquire_lease(
        self, thread_id: str, owner: str, ttl: float, *, graph: str = ""
    ) -> Lease:
        """Take the thread's lease for `ttl` seconds with the next fencing token.

        Succeeds if nobody holds it, the holder released it, or it expired; otherwise raises
        `hitl_async.ThreadBusyError` naming the holder and when its lease expires. `graph` names
        the graph running the thread, so recovery knows which graph continues it.
        """

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
        if not isinstance(self, BaseSaver):
            raise TypeError(f"{type(self).__name__} is a LeaseStore but not a BaseSaver")
        lease = await self.acquire_lease(thread_id, owner, ttl, graph=graph)
        return lease, await self.load(thread_id, checkpoint_ns, checkpoint_id)

    @abstractmethod
    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend a held lease (same token) by `ttl` seconds from now, even if it expired
        meanwhile (nobody took the thread over); `LeaseLostError` if the thread's token is no
        longer `lease.token` or the lease was released."""

    @abstractmethod
    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up if it is still this one (same token); otherwise do nothing."""

    @abstractmethod
    async def expired_leases(self, *, graph: str | None = None, limit: int = 100) -> list[Lease]:
        """Leases not released whose expiry passed (runs whose process died), oldest expiry
        first; only those of `graph` if given."""


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """Which pending interrupts `InboxStore.list_inbox` returns: every field set narrows the
    page. Ordered by `(created_at, thread_id, interrupt_id)`; `after` is that triple of the
    previous page's last entry (keyset pagination); `due_before` keeps only entries with a
    deadline before it (seconds since the epoch)."""

    thread_id: str | None = None
    node: str | None = None
    graph: str | None = None
    due_before: float | None = None
    after: tuple[str, str, str] | None = None
    limit: int = 100

    def matches(self, entry: InboxEntry) -> bool:
        """Whether `entry` passes every filter (not `limit`): for drivers that filter in
        Python."""
        return (
            (self.thread_id is None or entry.thread_id == self.thread_id)
            and (self.node is None or entry.node == self.node)
            and (self.graph is None or entry.graph == self.graph)
            and (
                self.due_before is None
                or (entry.deadline is not None and entry.deadline < self.due_before)
            )
            and (self.after is None or inbox_order(entry) > self.after)
        )


def inbox_order(entry: InboxEntry) -> tuple[str, str, str]:
    """The inbox's sort key, and the cursor `InboxQuery.after` takes."""
    return (entry.created_at, entry.thread_id, entry.interrupt_id)


class InboxStore(ABC):
    """The inbox index: the interrupts waiting for a human, across threads, kept by every
    `commit`/`put_writes` given `inbox=` (which replaces the thread's entries in the same atomic
    step) and removed by `delete_thread`."""

    @abstractmethod
    async def list_inbox(self, query: InboxQuery = InboxQuery()) -> list[InboxEntry]:
        """A page of pending interrupts read from the index (never from checkpoints).

        A damaged row never hides the others: it is returned as an entry with `damaged` set
        (naming what is wrong) and whatever fields could be read, in its place in the order.
        """


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which run requests `RunQueueStore.list_requests` returns: every field set narrows the
    page. Newest first, by `(created_at, id)` descending; `before` is that pair of the previous
    page's last request (keyset pagination)."""

    queue: str | None = None
    thread_id: str | None = None
    status: str | None = None
    before: tuple[str, str] | None = None
    limit: int = 100

    def matches(self, request: RunRequest) -> bool:
        """Whether `request` passes every filter (not `limit`): for drivers that filter in
        Python."""
        return (
            (self.queue is None or request.queue == self.queue)
            and (self.thread_id is None or request.thread_id == self.thread_id)
            and (self.status is None or request.status == self.status)
            and (self.before is None or run_order(request) < self.before)
        )


def run_order(request: RunRequest) -> tuple[str, str]:
    """The listing's sort key (newest first: descending), and the cursor `RunQuery.before`
    takes."""
    return (request.created_at, request.id)


class RunQueueStore(ABC):
    """The run queue: requests stored by `enqueue`, claimed by workers, finished once."""

    @abstractmethod
    async def enqueue(self, request: RunRequest) -> None:
        """Store a queued run request (and wake a waiting worker); `ValueError` if its id
        exists."""

    @abstractmethod
    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        """Claim the oldest runnable request of `queue` for `ttl` seconds: queued, or running
        with an expired claim; never one whose thread has another running request. Marks it
        running by `owner` (attempts + 1). None when there is none."""

    @abstractmethod
    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        """Extend a claim held by `owner`; False if it is no longer held."""

    @abstractmethod
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

    @abstractmethod
    async def get_request(self, request_id: str) -> RunRequest | None:
        """The request as stored, or None."""

    @abstractmethod
    async def list_requests(self, query: RunQuery = RunQuery()) -> list[RunRequest]:
        """A page of requests as stored (any status), newest first: what operators look at
        (`hitl runs`), never what workers claim from.

        A damaged row never hides the others: it is returned with `damaged` set (naming what is
        wrong) and whatever fields could be read, in its place in the order.
        """

    @abstractmethod
    async def wait_for_work(self, queue: str, timeout: float) -> None:
        """Return when a request may be claimable in `queue`, or after `timeout` seconds."""


class ChangeFeed(ABC):
    """Change notification: wake a waiter when a thread changes."""

    @abstractmethod
    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        """Return when the thread may have changed (a commit, writes, a lease release), or
        after `timeout` seconds."""


class CacheStore(ABC):
    """A cache of node results kept in the store (`compile(cache=saver)`): bytes under
    `(namespace, key)`, each kept `ttl` seconds after it was set (None: until cleared). Every
    method is atomic on its own; an expired entry is never returned."""

    @abstractmethod
    async def cache_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """The entries still cached for `keys` (missing or expired ones are left out)."""

    @abstractmethod
    async def cache_set(self, entries: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        """Store `(namespace, key, value, ttl)` entries, replacing any under the same key."""

    @abstractmethod
    async def cache_clear(self, namespaces: Sequence[str] | None = None) -> None:
        """Delete the entries of `namespaces` (None: every entry)."""


_ABCS: tuple[tuple[Capability, type], ...] = (
    (Capability.STORAGE, BaseSaver),
    (Capability.LEASES, LeaseStore),
    (Capability.INBOX, InboxStore),
    (Capability.RUN_QUEUE, RunQueueStore),
    (Capability.CHANGE_NOTIFICATION, ChangeFeed),
    (Capability.CACHE, CacheStore),
)

COORDINATION = frozenset({Capability.LEASES, Capability.INBOX, Capability.RUN_QUEUE})
"""What the distributed features (queue, workers, inbox, recovery) need together."""

_HINT = {
    Capability.STORAGE: "hitl_async.BaseSaver",
    Capability.LEASES: "hitl_async.checkpoint.capabilities.LeaseStore",
    Capability.INBOX: "hitl_async.checkpoint.capabilities.InboxStore",
    Capability.RUN_QUEUE: "hitl_async.checkpoint.capabilities.RunQueueStore",
    Capability.CHANGE_NOTIFICATION: "hitl_async.checkpoint.capabilities.ChangeFeed",
    Capability.CACHE: "hitl_async.checkpoint.capabilities.CacheStore",
}


def capabilities_of(store: object) -> frozenset[Capability]:
    """The capabilities `store` implements (empty for an object that is not a store)."""
    cls = type(store)
    cached = _cache.get(cls)
    if cached is None:
        cached = _cache[cls] = frozenset(cap for cap, abc in _ABCS if issubclass(cls, abc))
    return cached


_cache: dict[type, frozenset[Capability]] = {}


def require(store: object, *needed: Capability, needed_for: str) -> None:
    """Raise `MissingCapabilityError` unless `store` implements every capability in `needed`;
    `needed_for` names what needs them (e.g. "submit()")."""
    have = capabilities_of(store)
    missing = [cap for cap in needed if cap not in have]
    if missing:
        raise MissingCapabilityError(
            _store_name(store),
            [str(cap) for cap in missing],
            needed_for,
            [_HINT[cap] for cap in missing],
        )


def _store_name(store: object) -> str:
    name = type(store).__name__
    return name if type(store).__repr__ is object.__repr__ else f"{name} ({store!r})"
