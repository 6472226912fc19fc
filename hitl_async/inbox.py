"""The inbox: interrupts waiting for a human across all threads, read from the store's index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hitl_async.checkpoint.capabilities import InboxQuery
from hitl_async.errors import SerializationError
from hitl_async.serde import default_serializer

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import InboxEntry
    from hitl_async.checkpoint.capabilities import InboxStore
    from hitl_async.serde import Serializer

__all__ = ["PendingInterrupt", "list_pending"]


@dataclass(frozen=True, slots=True)
class PendingInterrupt:
    """An interrupt waiting for an answer: where it is, what it asks, and until when."""

    thread_id: str
    interrupt_id: str
    value: Any
    node: str
    graph: str
    created_at: str
    deadline: float | None
    checkpoint_ns: str = ""
    damaged: str | None = None
    """Why this entry could not be read (its stored row or value is damaged; `value` is None):
    one bad entry is reported here instead of failing the whole inbox."""

    @property
    def cursor(self) -> tuple[str, str, str]:
        """Pass as `after=` to get the next page."""
        return (self.created_at, self.thread_id, self.interrupt_id)


def _decode(entry: InboxEntry, serde: Serializer) -> PendingInterrupt:
    damaged = entry.damaged
    value: Any = None
    if damaged is None:
        try:
            value = serde.loads(entry.value)
        except SerializationError as exc:
            damaged = f"its value cannot be decoded: {exc}"
    return PendingInterrupt(
        thread_id=entry.thread_id,
        interrupt_id=entry.interrupt_id,
        value=value,
        damaged=damaged,
        node=entry.node,
        graph=entry.graph,
        created_at=entry.created_at,
        deadline=entry.deadline,
        checkpoint_ns=entry.checkpoint_ns,
    )


async def list_pending(
    saver: InboxStore,
    *,
    thread_id: str | None = None,
    node: str | None = None,
    graph: str | None = None,
    due_before: float | None = None,
    after: tuple[str, str, str] | None = None,
    limit: int = 100,
    serde: Serializer | None = None,
) -> list[PendingInterrupt]:
    """A page of pending interrupts (oldest first), filtered; its cost follows the number
    pending, not the number of checkpoints. An entry whose row or value is damaged is listed
    with `damaged` saying why (and `value` None), never hiding the others."""
    query = InboxQuery(thread_id, node, graph, due_before, after, limit)
    entries = await saver.list_inbox(query)
    return [_decode(e, serde or default_serializer) for e in entries]
