"""`EphemeralValue`: a state key that holds a value only for the step after the one that
wrote it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hitl_async.channels.base import MISSING, Value, ValueChannel
from hitl_async.errors import InvalidUpdateError

__all__ = ["EphemeralValue"]


class EphemeralValue(ValueChannel[Value]):
    """The value written in a step is seen by the next step's nodes, then cleared (unless that
    step writes it again). `guard=True`: more than one write in a step raises
    InvalidUpdateError; `guard=False`: the last one is kept. As a channel object, `update([])`
    clears it."""

    __slots__ = ("guard",)

    def __init__(self, typ: Any, guard: bool = True) -> None:
        super().__init__(typ)
        self.guard = guard

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EphemeralValue) and other.guard == self.guard

    def __hash__(self) -> int:
        return hash((EphemeralValue, self.guard))

    def update(self, values: Sequence[Value]) -> bool:
        if not values:
            had = self.value is not MISSING
            self.value = MISSING
            return had
        if self.guard and len(values) != 1:
            raise InvalidUpdateError(
                f"At key {self.key!r}: EphemeralValue(guard=True) can receive only one value "
                f"per step, got {len(values)}; use guard=False to keep the last of them"
            )
        self.value = values[-1]
        return True
