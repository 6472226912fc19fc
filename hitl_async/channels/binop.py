"""`BinaryOperatorAggregate`: a state key folded with a binary operator, as
`Annotated[int, operator.add]`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hitl_async.channels.base import BaseChannel, Value

__all__ = ["BinaryOperatorAggregate"]


class BinaryOperatorAggregate(BaseChannel[Value]):
    """Each write is merged into the value with `operator(current, write)`, starting from the
    empty value of `typ` (`int()` is 0, `list()` is []); `Overwrite(v)` replaces it."""

    __slots__ = ("operator",)

    def __init__(self, typ: Any, operator: Callable[[Value, Value], Value]) -> None:
        super().__init__(typ)
        self.operator = operator

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BinaryOperatorAggregate) and (
            self.operator is other.operator
            or "<lambda>"
            in (getattr(self.operator, "__name__", ""), getattr(other.operator, "__name__", ""))
        )

    def __hash__(self) -> int:
        return hash(BinaryOperatorAggregate)
