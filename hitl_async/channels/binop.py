"""`BinaryOperatorAggregate`: a state key folded with a binary operator, as
`Annotated[int, operator.add]`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hitl_async.channels.base import MISSING, Value, ValueChannel, empty_value
from hitl_async.errors import InvalidUpdateError
from hitl_async.types import overwritten

__all__ = ["BinaryOperatorAggregate"]

_get_overwrite = overwritten
"""LangGraph's private name for `hitl_async.types.overwritten`, kept for ported tests."""


class BinaryOperatorAggregate(ValueChannel[Value]):
    """Each write is merged into the value with `operator(current, write)`, starting from the
    empty value of `typ` (`int()` is 0, `list()` is []); `Overwrite(v)` replaces it (two in
    one step raise InvalidUpdateError)."""

    __slots__ = ("operator",)

    def __init__(self, typ: Any, operator: Callable[[Value, Value], Value]) -> None:
        super().__init__(typ)
        self.operator = operator
        self.value: Any = empty_value(typ)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BinaryOperatorAggregate) and (
            self.operator is other.operator
            or "<lambda>"
            in (getattr(self.operator, "__name__", ""), getattr(other.operator, "__name__", ""))
        )

    def __hash__(self) -> int:
        return hash(BinaryOperatorAggregate)

    def update(self, values: Sequence[Any]) -> bool:
        if not values:
            return False
        seen_overwrite = False
        for value in values:
            is_overwrite, new = overwritten(value)
            if is_overwrite:
                if seen_overwrite:
                    raise InvalidUpdateError(
                        f"At key {self.key!r}: can receive only one Overwrite value per step; "
                        "write at most one Overwrite(...) to a key in a step"
                    )
                seen_overwrite = True
                self.value = new
            elif not seen_overwrite:  # writes after an Overwrite in its step are dropped
                self.value = value if self.value is MISSING else self.operator(self.value, value)
        return True

    def _restore(self, checkpoint: Any) -> None:
        self.value = empty_value(self.typ) if checkpoint is MISSING else checkpoint
