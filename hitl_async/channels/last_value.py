"""`LastValue`: a state key that keeps the one value written in a step (the default)."""

from __future__ import annotations

from typing import Any

from hitl_async.channels.base import BaseChannel, Value

__all__ = ["LastValue"]


class LastValue(BaseChannel[Value]):
    """Keeps the value written last; more than one write in a step raises InvalidUpdateError.
    The same as a key with no annotation, as in LangGraph."""

    __slots__ = ()

    def __init__(self, typ: Any, key: str = "") -> None:
        super().__init__(typ, key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LastValue)

    def __hash__(self) -> int:
        return hash(LastValue)
