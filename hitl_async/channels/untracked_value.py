"""`UntrackedValue`: a state key the run holds in memory but never checkpoints."""

from __future__ import annotations

from typing import Any

from hitl_async.channels.base import BaseChannel, Value

__all__ = ["UntrackedValue"]


class UntrackedValue(BaseChannel[Value]):
    """Keeps the last value written, for the rest of the run only: it is left out of every
    checkpoint, pending write and stored `Send` argument, so a run resumed from the store (and
    `get_state()`) does not have it. `guard=True`: more than one write in a step raises
    InvalidUpdateError."""

    __slots__ = ("guard",)

    def __init__(self, typ: Any, guard: bool = True) -> None:
        super().__init__(typ)
        self.guard = guard

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UntrackedValue) and other.guard == self.guard

    def __hash__(self) -> int:
        return hash((UntrackedValue, self.guard))
