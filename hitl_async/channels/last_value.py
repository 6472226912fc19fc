"""`LastValue`: a state key that keeps the one value written in a step (the default)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hitl_async.channels.base import MISSING, BaseChannel, Value
from hitl_async.errors import EmptyChannelError, InvalidUpdateError

__all__ = ["LastValue"]


class LastValue(BaseChannel[Value]):
    """Keeps the value written last; more than one write in a step raises InvalidUpdateError.
    The same as a key with no annotation, as in LangGraph."""

    __slots__ = ("value",)

    def __init__(self, typ: Any, key: str = "") -> None:
        super().__init__(typ, key)
        self.value: Any = MISSING

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

    def get(self) -> Value:
        if self.value is MISSING:
            raise EmptyChannelError()
        return self.value  # type: ignore[no-any-return]

    def is_available(self) -> bool:
        return self.value is not MISSING

    def checkpoint(self) -> Any:
        return self.value

    def _restore(self, checkpoint: Any) -> None:
        self.value = checkpoint
