"""The events of one root run on their way to its consumer.

Every event of a run — from the loop (updates, values, checkpoints, tasks, debug) and from
inside tasks (custom writes, messages), in any thread, at any subgraph depth — goes through one
`RunEvents`. With a live consumer (`astream`, `stream`) it is a bounded buffer: the consumer
takes everything buffered in one batch, and producers wait when it is full (the run's loop
before its next step or after a task, worker threads in the write itself, async nodes at their
next `await`). Without one (`invoke`) the run drains it itself between steps.

A new stream mode is an entry in `STREAM_MODES` (and its name in `StreamMode`, the public
type) plus the code that emits it: `Run.emit` on the loop, `task_emitter(mode)` inside a task.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio
import anyio.lowlevel

from hitl_async._runtime import active_scratchpad
from hitl_async.errors import InvalidConfigError

__all__ = [
    "LIMIT",
    "STREAM_MODES",
    "Delivery",
    "Event",
    "Namespace",
    "RunEvents",
    "parse_stream_mode",
    "task_emitter",
]


class Delivery(enum.Enum):
    """When the events of a stream mode can appear, which decides how a step is driven: a step
    whose events can only come at its end runs in the consumer's task (no extra task, no
    switch); any other runs in a task of its own while the consumer takes its events."""

    STEP_END = "after each superstep"
    TASK_END = "as each task finishes"
    WHILE_RUNNING = "while a task runs"


STREAM_MODES: dict[str, Delivery] = {
    "values": Delivery.STEP_END,
    "checkpoints": Delivery.STEP_END,
    "updates": Delivery.TASK_END,
    "tasks": Delivery.WHILE_RUNNING,  # a task's start is reported before it runs
    "debug": Delivery.WHILE_RUNNING,
    "custom": Delivery.WHILE_RUNNING,
    "messages": Delivery.WHILE_RUNNING,  # LLM tokens, from LangChain callbacks inside a node
}
"""The registry of stream modes (their names are also `StreamMode`, the public type)."""

LIMIT = 256
"""Events a live stream buffers for its consumer before producers wait."""

Namespace = tuple[str, ...]
"""Where an event comes from: () for the root graph, one `node:task_id` part per subgraph."""

Event = tuple[Namespace, str, Any]
"""`(namespace, mode, chunk)`."""


def parse_stream_mode(stream_mode: str | Sequence[str] | None) -> tuple[tuple[str, ...], bool]:
    """The modes a `stream_mode=` argument asks for, and whether it named a single mode (events
    are then yielded without their mode)."""
    if stream_mode is None:
        return ("updates",), True
    if isinstance(stream_mode, str):
        modes: tuple[str, ...] = (stream_mode,)
        single = True
    elif isinstance(stream_mode, Iterable):
        modes, single = tuple(stream_mode), False
    else:
        raise InvalidConfigError(
            f"stream_mode must be a mode name or a list of them, got "
            f"{type(stream_mode).__name__} {stream_mode!r}; valid modes are {sorted(STREAM_MODES)}"
        )
    for m in modes:
        if not isinstance(m, str) or m not in STREAM_MODES:
            raise InvalidConfigError(
                f"unknown stream_mode {m!r}; valid modes are {sorted(STREAM_MODES)}"
            )
    return modes, single


def _scheduler() -> Callable[[Callable[[], object]], object]:
    """Schedules a callback in the running event loop from any thread, without waiting."""
    native = anyio.lowlevel.current_token().native_token
    if isinstance(native, asyncio.AbstractEventLoop):
        return native.call_soon_threadsafe
    run_sync_soon: Callable[[Callable[[], object]], object] = getattr(native, "run_sync_soon")  # noqa: B009 - trio's TrioToken
    return run_sync_soon


class RunEvents:
    """The events of one root run (and its subgraphs), on their way to the consumer."""

    __slots__ = (
        "_call_soon",
        "_consumer",
        "_ended",
        "_items",
        "_lock",
        "_loop_thread",
        "_room",
        "_room_waiters",
        "_threads_waiting",
        "closed",
        "limit",
        "live",
        "modes",
        "subgraphs",
    )

    def __init__(self, modes: Iterable[str], *, subgraphs: bool = False, limit: int = LIMIT):
        self.modes = frozenset(modes)
        self.subgraphs = subgraphs
        """Whether events of subgraphs (a non-empty namespace) are kept."""
        self.limit = limit
        self.live = False
        self.closed = False
        self._items: list[Event] = []
        self._lock = threading.Lock()
        self._room: threading.Condition | None = None  # made when a thread first waits
        self._consumer: anyio.Event | None = None
        self._room_waiters: list[anyio.Event] = []
        self._threads_waiting = 0
        self._ended = False
        self._loop_thread = 0
        self._call_soon: Callable[[Callable[[], object]], object] | None = None

    def modes_at(self, ns: Namespace) -> frozenset[str]:
        """The modes a run at namespace `ns` emits: the subgraphs' only with `subgraphs=True`."""
        return self.modes if not ns or self.subgraphs else frozenset()

    # -- producers -------------------------------------------------------------------------------

    def put(self, event: Event) -> None:
        """Add an event (any thread). A worker thread waits here while a live buffer is full;
        the run's loop thread never blocks (it waits in `wait_room`)."""
        with self._lock:
            if self.closed:
                return
            self._items.append(event)
            consumer, self._consumer = self._consumer, None
            full = self.live and len(self._items) >= self.limit
        on_loop = threading.get_ident() == self._loop_thread
        if consumer is not None:
            if on_loop:
                consumer.set()
            else:
                assert self._call_soon is not None
                self._call_soon(consumer.set)
        if full and not on_loop:
            with self._lock:
                if self._room is None:
                    self._room = threading.Condition(self._lock)
                self._threads_waiting += 1
                while len(self._items) >= self.limit and not self.closed:
                    self._room.wait()
                self._threads_waiting -= 1

    def put_on_loop(self, event: Event) -> None:
        """`put` for the run's own event loop thread (the loop's events): no lock needed, as
        the consumer takes on the same thread, and never a wait."""
        if self.closed:
            return
        self._items.append(event)
        consumer = self._consumer
        if consumer is not None:
            self._consumer = None
            consumer.set()

    def emit(self, mode: str, chunk: Any, ns: Namespace = ()) -> None:
        """An event of `mode` from namespace `ns` (dropped unless the consumer asked for it)."""
        if mode in self.modes and (not ns or self.subgraphs):
            self.put((ns, mode, chunk))

    @property
    def full(self) -> bool:
        return self.live and len(self._items) >= self.limit

    async def wait_room(self) -> None:
        """On the run's loop: wait while a live buffer is full (the consumer is behind)."""
        if not self.live or len(self._items) < self.limit:
            return
        while True:
            with self._lock:
                if self.closed or len(self._items) < self.limit:
                    return
                room = anyio.Event()
                self._room_waiters.append(room)
            await room.wait()

    def end(self) -> None:
        """The live stretch is over: the consumer takes what is left and stops waiting."""
        with self._lock:
            self._ended = True
            self.live = False
            consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.set()

    # -- the consumer ----------------------------------------------------------------------------

    def go_live(self) -> None:
        """A consumer in this event loop takes the events as they come (`next_batch`) until
        `end()`: the buffer is bounded meanwhile."""
        if self._call_soon is None:
            self._loop_thread = threading.get_ident()
            self._call_soon = _scheduler()
        with self._lock:
            self._ended = False
            self.live = True

    def take(self) -> list[Event]:
        """Everything buffered, in the order it was emitted; makes room for waiting producers."""
        if not self._items and not self._room_waiters:
            return []
        with self._lock:
            items, self._items = self._items, []
            waiters, self._room_waiters = self._room_waiters, []
            if self._threads_waiting and self._room is not None:
                self._room.notify_all()
        for room in waiters:
            room.set()
        return items

    async def next_batch(self) -> list[Event] | None:
        """Wait for events; all of them, or None once the run ended and everything was taken."""
        while True:
            with self._lock:
                ready = bool(self._items)
                if not ready:
                    if self._ended:
                        return None
                    self._consumer = arrived = anyio.Event()
            if ready:
                return self.take()
            await arrived.wait()

    def close(self) -> None:
        """The consumer stopped: drop what is buffered and what comes; release every producer."""
        with self._lock:
            self.closed = True
            self._items = []
            waiters, self._room_waiters = self._room_waiters, []
            if self._room is not None:
                self._room.notify_all()
        for room in waiters:
            room.set()


def task_emitter(mode: str) -> Callable[[Any], None] | None:
    """For code running inside a task (a node, a `@task`, a LangChain callback handler called
    from one): a function that emits events of `mode` for that task, namespaced like its other
    events, safe to call from any thread; None when the run does not stream `mode`."""
    pad = active_scratchpad()
    run = pad.run if pad is not None else None
    if run is None or mode not in run.modes:
        return None
    events: RunEvents = run.events
    ns: Namespace = run.ns_path

    def emit(chunk: Any) -> None:
        events.put((ns, mode, chunk))

    return emit
