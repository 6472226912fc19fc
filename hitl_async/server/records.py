"""The records `hitl serve` keeps beside the checkpoints: threads (metadata, status, last values),
runs, assistants and each run's event log, with the notifications that carry new events to
whichever API process streams them.

A driver implements `RecordStore` (one per store URL scheme) and registers a factory
`factory(url, **options) -> RecordStore` under the entry-point group `hitl_async.records`; the
same URL and options as `hitl_async.connect()` name the same place (PostgreSQL schema, Redis key
prefix, SQLite file). `memory://` is built in (one process only).

Records are JSON documents; a driver stores them as it likes but must make `insert_run(...,
exclusive=True)` and the `update_*` read-modify-writes atomic across processes, keep the events
of one run in append order, and wake `wait_events` callers of any process sharing the store
soon after `append_event` (a driver without notifications polls).
"""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import TracebackType
from typing import Any, Self

import anyio

from hitl_async.errors import DriverNotFoundError

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "RECORDS_ENTRY_POINT_GROUP",
    "AssistantRecord",
    "EventFollower",
    "RecordStore",
    "RunRecord",
    "StreamEvent",
    "Subscription",
    "ThreadQuery",
    "ThreadRecord",
    "Waiters",
    "matches_filter",
    "open_records",
    "search_in_memory",
]

RECORDS_ENTRY_POINT_GROUP = "hitl_async.records"

ACTIVE_RUN_STATUSES = frozenset({"pending", "running"})
"""Statuses of a run that holds its thread (a second exclusive run is refused meanwhile)."""


def _fields_of(record: Any) -> dict[str, Any]:
    """A record's fields as a dict for JSON encoding: shallow (the nested values are shared, not
    copied as `dataclasses.asdict` would, which cost more than the encoding)."""
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


@dataclass
class ThreadRecord:
    """A thread as the API shows it: metadata, status and the values of its last state."""

    thread_id: str
    created_at: str
    updated_at: str
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = "idle"
    config: dict[str, Any] = field(default_factory=dict)
    values: Any = None
    interrupts: dict[str, Any] = field(default_factory=dict)
    error: Any = None
    state_updated_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return _fields_of(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ThreadRecord:
        return cls(**{k: v for k, v in doc.items() if k in _THREAD_FIELDS})


@dataclass
class RunRecord:
    """A run: what was asked (`kwargs`), its status, and (once ended) its output."""

    run_id: str
    thread_id: str
    assistant_id: str
    created_at: str
    updated_at: str
    status: str = "pending"
    metadata: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    multitask_strategy: str = "enqueue"
    output: Any = None
    error: Any = None
    attempt: int = 0
    cancel: str | None = None
    """Set when someone asked to stop the run: the action, interrupt or rollback."""

    def to_json(self) -> dict[str, Any]:
        return _fields_of(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunRecord:
        return cls(**{k: v for k, v in doc.items() if k in _RUN_FIELDS})


@dataclass
class AssistantRecord:
    """An assistant: a graph with a configuration (the server makes one per graph)."""

    assistant_id: str
    graph_id: str
    name: str
    created_at: str
    updated_at: str
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    description: str | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)
    """Every version saved (`assistants.get_versions`), oldest first; empty: only the current."""
    deleted: bool = False
    """A deleted assistant stays as a tombstone (a record store keeps assistants forever)."""

    def to_json(self) -> dict[str, Any]:
        return _fields_of(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AssistantRecord:
        return cls(**{k: v for k, v in doc.items() if k in _ASSISTANT_FIELDS})


_THREAD_FIELDS = frozenset(ThreadRecord.__dataclass_fields__)
_RUN_FIELDS = frozenset(RunRecord.__dataclass_fields__)
_ASSISTANT_FIELDS = frozenset(AssistantRecord.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of a run's log: `id` is opaque text, increasing in append order per run."""

    id: str
    event: str
    data: str


@dataclass(frozen=True)
class ThreadQuery:
    """A thread search: every given filter must match."""

    status: str | None = None
    metadata: Mapping[str, Any] | None = None
    values: Mapping[str, Any] | None = None
    ids: Sequence[str] | None = None
    limit: int = 10
    offset: int = 0
    sort_by: str = "created_at"
    sort_order: str = "desc"

    def matches(self, record: ThreadRecord) -> bool:
        if self.status is not None and record.status != self.status:
            return False
        if self.ids is not None and record.thread_id not in self.ids:
            return False
        if self.metadata and not matches_filter(record.metadata, self.metadata):
            return False
        return not (
            self.values
            and not (isinstance(record.values, dict) and matches_filter(record.values, self.values))
        )


def matches_filter(doc: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """JSON containment: every key of `wanted` is in `doc` with an equal value (dicts compared
    recursively the same way), as PostgreSQL's `@>` on objects."""
    for key, value in wanted.items():
        if key not in doc:
            return False
        have = doc[key]
        if isinstance(value, Mapping) and isinstance(have, Mapping):
            if not matches_filter(have, value):
                return False
        elif have != value:
            return False
    return True


def search_in_memory(records: Sequence[ThreadRecord], query: ThreadQuery) -> list[ThreadRecord]:
    """Filter, sort and page threads in Python (drivers without a native query use it)."""
    found = [r for r in records if query.matches(r)]
    key = query.sort_by if query.sort_by in ("created_at", "updated_at", "thread_id") else None
    if key is None:
        key = "created_at"
    found.sort(key=lambda r: (getattr(r, key), r.thread_id), reverse=query.sort_order != "asc")
    return found[query.offset : query.offset + query.limit]


class Subscription:
    """A lasting interest in a key: `notify` marks it dirty and wakes a waiting `wait()`."""

    def __init__(self) -> None:
        self.dirty = False
        self.first = True
        self._event = anyio.Event()

    def set(self) -> None:
        self.dirty = True
        self._event.set()

    def take(self) -> bool:
        """Whether it was notified since the last `take()`; clears the mark."""
        dirty, self.dirty = self.dirty, False
        if dirty:
            self._event = anyio.Event()
        return dirty

    async def wait(self) -> None:
        if not self.dirty:
            await self._event.wait()


class Waiters:
    """In-process wake-ups by key: `watch(key)` before reading, `notify(key)` after writing."""

    def __init__(self) -> None:
        self._events: dict[str, list[anyio.Event]] = {}
        self._subscriptions: dict[str, list[Subscription]] = {}

    @contextlib.contextmanager
    def subscribe(self, key: str) -> Iterator[Subscription]:
        sub = Subscription()
        self._subscriptions.setdefault(key, []).append(sub)
        try:
            yield sub
        finally:
            subs = self._subscriptions.get(key)
            if subs is not None:
                with contextlib.suppress(ValueError):
                    subs.remove(sub)
                if not subs:
                    self._subscriptions.pop(key, None)

    @contextlib.contextmanager
    def watch(self, key: str) -> Iterator[anyio.Event]:
        event = anyio.Event()
        self._events.setdefault(key, []).append(event)
        try:
            yield event
        finally:
            waiting = self._events.get(key)
            if waiting is not None:
                with contextlib.suppress(ValueError):
                    waiting.remove(event)
                if not waiting:
                    self._events.pop(key, None)

    def notify(self, key: str) -> None:
        for event in self._events.pop(key, []):
            event.set()
        for sub in self._subscriptions.get(key, ()):
            sub.set()

    def notify_all(self) -> None:
        for key in {*self._events, *self._subscriptions}:
            self.notify(key)


Change = Callable[[Any], Any]


class RecordStore(ABC):
    """Where `hitl serve` keeps threads, runs, assistants and run event logs (see the module)."""

    poll_interval: float = 5.0
    """How long `wait_events` sleeps without a notification before reading again."""

    def __init__(self) -> None:
        self.waiters = Waiters()
        self._ends: dict[str, RunRecord] = {}

    def remember_end(self, record: RunRecord) -> None:
        """Keep the final record of a run that ended in this process, for the waiters its end
        signal wakes here (`recent_end`): they need not read it back."""
        if len(self._ends) >= 1024:
            del self._ends[next(iter(self._ends))]
        self._ends[record.run_id] = record

    def recent_end(self, run_id: str) -> RunRecord | None:
        """The final record `remember_end` kept for the run, if any (read it otherwise)."""
        return self._ends.get(run_id)

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """Create tables/keys if needed and start listening for notifications; idempotent."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def destroy(self) -> None:  # noqa: B027 - optional hook
        """Delete every record (for tests)."""

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

    # -- assistants ------------------------------------------------------------------------------

    @abstractmethod
    async def put_assistant(self, record: AssistantRecord, *, if_absent: bool = False) -> bool:
        """Store an assistant (replace it unless `if_absent`); whether it was written."""

    @abstractmethod
    async def get_assistant(self, assistant_id: str) -> AssistantRecord | None: ...

    @abstractmethod
    async def list_assistants(self) -> list[AssistantRecord]: ...

    # -- threads ---------------------------------------------------------------------------------

    @abstractmethod
    async def insert_thread(self, record: ThreadRecord) -> bool:
        """Store a new thread; False (and nothing written) when the id exists."""

    @abstractmethod
    async def get_thread(self, thread_id: str) -> ThreadRecord | None: ...

    @abstractmethod
    async def update_thread(
        self, thread_id: str, change: Callable[[ThreadRecord], ThreadRecord]
    ) -> ThreadRecord | None:
        """Atomically replace the thread by `change(current)` (a pure function: a driver may
        call it again on a retry); the new record, or None when the thread does not exist."""

    @abstractmethod
    async def delete_thread(self, thread_id: str, *, keep_runs: bool = False) -> bool:
        """Delete the thread and (unless `keep_runs`) its runs and their event logs; whether it
        existed."""

    @abstractmethod
    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]: ...

    async def count_threads(self, query: ThreadQuery) -> int:
        """How many threads match (limit and offset ignored)."""
        everything = ThreadQuery(
            status=query.status,
            metadata=query.metadata,
            values=query.values,
            ids=query.ids,
            limit=1 << 62,
        )
        return len(await self.search_threads(everything))

    # -- runs ------------------------------------------------------------------------------------

    @abstractmethod
    async def insert_run(self, record: RunRecord, *, exclusive: bool) -> bool:
        """Store a new run. With `exclusive`, only if its thread has no active run (pending or
        running), checked and written atomically; False when refused."""

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def list_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[RunRecord]:
        """The thread's runs, newest first."""

    @abstractmethod
    async def update_run(
        self, run_id: str, change: Callable[[RunRecord], RunRecord]
    ) -> RunRecord | None:
        """Atomically replace the run by `change(current)`; None when it does not exist."""

    @abstractmethod
    async def delete_run(self, run_id: str) -> bool: ...

    async def active_runs(self, thread_id: str) -> list[RunRecord]:
        """The thread's pending and running runs, oldest first."""
        runs = await self.list_runs(thread_id, limit=1 << 30)
        return [r for r in reversed(runs) if r.status in ACTIVE_RUN_STATUSES]

    # -- event logs ------------------------------------------------------------------------------

    @abstractmethod
    async def append_event(self, run_id: str, event: str, data: str) -> str:
        """Append to the run's log and wake its readers in every process; the event's id."""

    async def append_events(self, run_id: str, events: Sequence[tuple[str, str]]) -> list[str]:
        """Append `(event, data)` pairs in order (drivers override it to use one round trip)."""
        return [await self.append_event(run_id, event, data) for event, data in events]

    @abstractmethod
    async def read_events(
        self, run_id: str, after: str | None = None, limit: int = 1000
    ) -> list[StreamEvent]:
        """Events appended after the one with id `after` (all when None), in order."""

    async def wait_events(
        self, run_id: str, after: str | None, timeout: float
    ) -> list[StreamEvent]:
        """Events after `after`, waiting up to `timeout` seconds for one to be appended."""
        with self.waiters.watch(run_id) as woken:
            found = await self.read_events(run_id, after)
            if found:
                return found
            with anyio.move_on_after(min(timeout, self.poll_interval)):
                await woken.wait()
        return await self.read_events(run_id, after)

    async def others_wrote(self, seen: object) -> tuple[bool, object]:
        """Whether another process may have written since the token `seen` (None: never
        asked), and the token to pass next time. A reader that waited `poll_interval` without
        a notification asks it before reading again: a driver that can tell cheaply (SQLite:
        one `PRAGMA data_version` probe shared by every waiter of the store) saves each waiter
        its read per poll; the default answers yes."""
        return True, None

    @contextlib.asynccontextmanager
    async def follow(self, run_id: str) -> AsyncIterator[EventFollower]:
        """Read a run's log as it grows: `await follower.next(after, timeout)`. The follower
        stays subscribed between calls, so it reads only after an append woke it (or after
        `poll_interval` without one), not once per call."""
        with self.waiters.subscribe(run_id) as subscription:
            yield EventFollower(self, run_id, subscription)

    async def signal(self, key: str) -> None:
        """Wake `wait_signal(key)` callers in every process sharing the store (this one: at
        once; drivers with notifications publish it)."""
        self.waiters.notify(key)

    async def wait_signal(self, key: str, timeout: float) -> bool:
        """Wait for `signal(key)` up to `timeout` seconds; whether it came. A signal sent
        before the call is not seen: check the state, then wait, then check again."""
        with self.waiters.watch(key) as woken, anyio.move_on_after(timeout):
            await woken.wait()
            return True
        return False


class EventFollower:
    """A subscription to one run's log (see `RecordStore.follow`)."""

    def __init__(self, store: RecordStore, run_id: str, subscription: Subscription) -> None:
        self.store = store
        self.run_id = run_id
        self.subscription = subscription
        self._seen: object = None

    async def next(self, after: str | None, timeout: float) -> list[StreamEvent]:
        """Events after `after`; waits up to `timeout` seconds when there is none yet (an
        empty list then: nothing was appended, or nothing another process could have)."""
        if self.subscription.take() or after is None or self.subscription.first:
            self.subscription.first = False
            found = await self.store.read_events(self.run_id, after)
            if found:
                return found
        with anyio.move_on_after(min(timeout, self.store.poll_interval)):
            await self.subscription.wait()
        if not self.subscription.take():
            changed, self._seen = await self.store.others_wrote(self._seen)
            if not changed:
                return []
        return await self.store.read_events(self.run_id, after)


def _memory_factory(url: str, **options: Any) -> RecordStore:
    from hitl_async.server.memory_records import MemoryRecordStore

    return MemoryRecordStore()


@functools.cache
def _factories() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for ep in entry_points(group=RECORDS_ENTRY_POINT_GROUP):
        found.setdefault(ep.name.lower(), ep)
    return found


def open_records(url: str, **options: Any) -> RecordStore:
    """The record store at `url` (the same URL and options as the checkpoint store), with no
    I/O yet. `DriverNotFoundError` when no installed driver keeps server records there."""
    scheme = url.partition(":")[0].strip().lower()
    if scheme == "memory":
        return _memory_factory(url, **options)
    entry = _factories().get(scheme)
    if entry is None:
        known = ", ".join(sorted({"memory", *_factories()}))
        raise DriverNotFoundError(
            f"no installed driver keeps server records for {scheme}:// URLs (known: {known}); "
            "install the driver package of that store (hitl-async-sqlite, hitl-async-postgres "
            "or hitl-async-redis)"
        )
    factory = entry.load()
    store: RecordStore = factory(url, **options)
    return store
