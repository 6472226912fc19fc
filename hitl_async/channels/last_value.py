"""`LastValue`: a state key that keeps the one value written in a step (the default)."""

from __future__ import annotations

from collections.abc import Sequence

from hitl_async.channels.base import Value, ValueChannel
from hitl_async.errors import InvalidUpdateError

__all__ = ["LastValue"]


class LastValue(ValueChannel[Value]):
    """Keeps the value written last; more than one write in a step raises InvalidUpdateError.
    The same as a key with no annotation, as in LangGraph."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LastValue)

    def __hash__(self) -> int:
        return hash(LastValue)

    def update(self, values: Sequence[Value]) -> bool:
        if not values:
            return False
        if len(values) != 1:
            raise InvalidUpdateError(
                f"At key {self.key!r}: can receive only one value per step, got {len(values)}; "
                "annotate the key with a reducer (Annotated[list, operator.add]) to merge them"
            )
        self.value = values[0]
        return True
