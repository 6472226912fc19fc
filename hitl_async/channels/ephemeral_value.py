"""`EphemeralValue`: a state key that holds a value only for the step after the one that
wrote it."""

from __future__ import annotations

from typing import Any

from hitl_async.channels.base import BaseChannel, Value

__all__ = ["EphemeralValue"]


class EphemeralValue(BaseChannel[Value]):
    """The value written in a step is seen by the next step's nodes, then cleared (unless that
    step writes it again). `guard=True`: more than one write in a step raises
    InvalidUpdateError; `guard=False`: the last one is kept."""

    __slots__ = ("guard",)

    def __init__(self, typ: Any, guard: bool = True) -> None:
        super().__init__(typ)
        self.guard = guard

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EphemeralValue) and other.guard == self.guard

    def __hash__(self) -> int:
        return hash((EphemeralValue, self.guard))
