"""Reading threads from a store, with or without their graph.

With the graph (`module:graph` given) a thread is read through `aget_state()`, exactly as the
engine sees it. Without it, the stored checkpoint is decoded directly: `values` are the stored
channels (writes of tasks that finished in a step that has not completed are listed with their
task, not applied: that needs the graph's reducers), `next` is the tasks not done, and the
interrupts are those raised and not yet answered. Values of types registered by the graph's
module (dataclasses, pydantic models, enums) cannot be rebuilt without importing it; they show
as `<undecodable: ...>` instead of failing the command.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from hitl_async._checkpoint import EngineCheckpoint
from hitl_async._task import prepare_tasks
from hitl_async.checkpoint.base import BaseSaver, LoadedCheckpoint
from hitl_async.errors import SerializationError
from hitl_async.inbox import PendingInterrupt
from hitl_async.serde import Serializer, default_serializer
from hitl_async.types import Interrupt, StateSnapshot

__all__ = [
    "LENIENT",
    "InterruptView",
    "TaskView",
    "ThreadView",
    "Undecodable",
    "scan_pending",
]


@dataclass(frozen=True)
class Undecodable:
    """A stored value the serializer could not rebuild (the reason is kept)."""

    reason: str

    def __str__(self) -> str:
        return f"<undecodable: {self.reason}>"


class _Lenient:
    """Decodes with `default_serializer`; a value it cannot rebuild becomes `Undecodable`."""

    def loads(self, data: bytes) -> Any:
        try:
            return default_serializer.loads(data)
        except SerializationError as exc:
            return Undecodable(" ".join(str(exc).split()))


LENIENT = cast(Serializer, _Lenient())
"""A serializer stand-in for reading: never fails on one value (see `Undecodable`)."""


@dataclass
class InterruptView:
    """A pending interrupt: its id, the node that raised it, and what it asks."""

    id: str
    node: str
    value: Any
    created_at: str | None = None
    deadline: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node": self.node,
            "value": self.value,
            "created_at": self.created_at,
            "deadline": self.deadline,
        }


@dataclass
class TaskView:
    """A task of the step the thread is at."""

    id: str
    name: str
    done: bool
    error: str | None = None
    interrupts: list[InterruptView] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "done": self.done,
            "error": self.error,
            "interrupts": [i.id for i in self.interrupts],
        }


@dataclass
class ThreadView:
    """A thread at one checkpoint, as `show`, `history` and `threads` print it."""

    thread_id: str
    checkpoint_id: str | None
    parent_id: str | None
    created_at: str | None
    metadata: dict[str, Any]
    values: Any
    tasks: list[TaskView]
    next: list[str]

    @property
    def step(self) -> int | None:
        step = self.metadata.get("step")
        return step if isinstance(step, int) else None

    @property
    def interrupts(self) -> list[InterruptView]:
        return [i for t in self.tasks for i in t.interrupts]

    @property
    def status(self) -> str:
        """paused (an interrupt waits), error (a task failed), stopped (tasks left to run, no
        interrupt: interrupt_before/after, a crash, or running right now) or done."""
        if self.interrupts:
            return "paused"
        if any(t.error and not t.done for t in self.tasks):
            return "error"
        return "stopped" if self.next else "done"

    def to_json(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "checkpoint_id": self.checkpoint_id,
            "parent_checkpoint_id": self.parent_id,
            "created_at": self.created_at,
            "step": self.step,
            "status": self.status,
            "next": list(self.next),
            "interrupts": [i.to_json() for i in self.interrupts],
            "values": self.values,
            "metadata": self.metadata,
            "tasks": [t.to_json() for t in self.tasks],
        }

    @classmethod
    def from_snapshot(cls, thread_id: str, snapshot: StateSnapshot) -> ThreadView:
        """From the engine's own `get_state()` (the graph was loaded)."""
        conf = (snapshot.config or {}).get("configurable") or {}
        parent = ((snapshot.parent_config or {}).get("configurable") or {}).get("checkpoint_id")
        left = Counter(snapshot.next)  # names of the tasks not done, in task order
        tasks = []
        for t in snapshot.tasks:
            if t.result is not None:
                done = not t.interrupts
            else:
                done = not (t.interrupts or t.error) and left[t.name] <= 0
            if not done:
                left[t.name] -= 1
            tasks.append(
                TaskView(
                    id=t.id,
                    name=t.name,
                    done=done,
                    error=None if t.error is None else str(t.error),
                    interrupts=[_interrupt(i, t.name) for i in t.interrupts],
                )
            )
        return cls(
            thread_id=thread_id,
            checkpoint_id=conf.get("checkpoint_id"),
            parent_id=parent,
            created_at=snapshot.created_at,
            metadata=dict(snapshot.metadata or {}),
            values=snapshot.values,
            tasks=tasks,
            next=list(snapshot.next),
        )

    @classmethod
    def from_loaded(cls, loaded: LoadedCheckpoint) -> ThreadView:
        """From a stored checkpoint alone (no graph): see the module docstring."""
        cp = EngineCheckpoint.decode(loaded, LENIENT)
        tasks = [
            TaskView(
                t.id,
                t.name,
                t.done,
                t.error_text,
                [_interrupt(i, t.name) for i in t.pending if isinstance(i, Interrupt)],
            )
            for t in prepare_tasks(cp, loaded.record.checkpoint_ns)
        ]
        return cls(
            thread_id=loaded.record.thread_id,
            checkpoint_id=cp.checkpoint_id,
            parent_id=cp.parent_id,
            created_at=cp.created_at,
            metadata=cp.metadata,
            values=cp.values,
            tasks=tasks,
            next=[t.name for t in tasks if not t.done],
        )


def _interrupt(i: Interrupt, node: str) -> InterruptView:
    return InterruptView(i.id, node, i.value, i.created_at, i.deadline)


async def scan_pending(
    saver: BaseSaver,
    *,
    thread_id: str | None = None,
    node: str | None = None,
    after: tuple[str, str, str] | None = None,
    limit: int = 100,
) -> list[PendingInterrupt]:
    """The inbox of a store without an inbox index: every thread's head is read (cost grows
    with the number of threads). Same order and paging as `list_pending`."""
    threads = [thread_id] if thread_id is not None else await saver.list_threads()
    found: list[PendingInterrupt] = []
    for thread in threads:
        loaded = await saver.load(thread)
        if loaded is None:
            continue
        view = ThreadView.from_loaded(loaded)
        for i in view.interrupts:
            if node is not None and i.node != node:
                continue
            found.append(
                PendingInterrupt(
                    thread_id=thread,
                    interrupt_id=i.id,
                    value=i.value,
                    node=i.node,
                    graph="",
                    created_at=i.created_at or view.created_at or "",
                    deadline=i.deadline,
                )
            )
    found.sort(key=lambda p: p.cursor)
    if after is not None:
        found = [p for p in found if p.cursor > after]
    return found[: max(limit, 0)]
