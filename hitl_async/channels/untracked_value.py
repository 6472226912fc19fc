"""`UntrackedValue`: a state key the run holds in memory but never checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy as _shallow_copy
from typing import Any, Self

from hitl_async.channels.base import MISSING, Value, ValueChannel
from hitl_async.errors import InvalidUpdateError

__all__ = ["UntrackedValue"]


class UntrackedValue(ValueChannel[Value]):
    """Keeps the last value written, for the rest of the run only: it is left out of every
    checkpoint, pending write and stored `Send` argument, so a run resumed from the store (and
    `get_state()`) does not have it. `guard=True`: more than one write in a step raises
    InvalidUpdateError. As a channel object, `checkpoint()` is always `MISSING` and
    `from_checkpoint()` starts empty."""

    __slots__ = ("guard",)

    def __init__(self, typ: Any, guard: bool = True) -> None:
        super().__init__(typ)
        self.guard = guard

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UntrackedValue) and other.guard == self.guard

    def __hash__(self) -> int:
        return hash((UntrackedValue, self.guard))

    def update(self, values: Sequence[Value]) -> bool:
        if not values:
            return False
        if self.guard and len(values) != 1:
            raise InvalidUpdateError(
                f"At key {self.key!r}: UntrackedValue(guard=True) can receive only one value "
                f"per step, got {len(values)}; use guard=False to keep the last of them"
            )
        self.value = values[-1]
        return True

    def checkpoint(self) -> Any:
        return MISSING

    def copy(self) -> Self:
        """A copy that keeps the value (which `checkpoint()` would drop)."""
        return _shallow_copy(self)

    def _restore(self, checkpoint: Any) -> None:
        self.value = MISSING
