"""`Topic`: a state key that collects the values written to it as a list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hitl_async.channels.base import MISSING, BaseChannel, Value
from hitl_async.errors import EmptyChannelError

__all__ = ["Topic"]


class Topic(BaseChannel[Sequence[Value]]):
    """A list of the values written in a step (a written list adds its items, not itself).
    `accumulate=False`: each step that runs starts the list afresh, so it holds the last step's
    writes and is cleared by a step that writes none; `accumulate=True`: writes add up across
    steps. An empty topic is no key of the state (`get()` raises EmptyChannelError)."""

    __slots__ = ("accumulate", "values")

    def __init__(self, typ: Any, accumulate: bool = False) -> None:
        super().__init__(typ)
        self.accumulate = accumulate
        self.values: list[Value] = []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Topic) and other.accumulate == self.accumulate

    def __hash__(self) -> int:
        return hash((Topic, self.accumulate))

    @property
    def ValueType(self) -> Any:
        return Sequence[self.typ]  # type: ignore[name-defined]

    @property
    def UpdateType(self) -> Any:
        return self.typ | list[self.typ]  # type: ignore[name-defined]

    def update(self, values: Sequence[Value | list[Value]]) -> bool:
        changed = False
        if not self.accumulate:
            changed = bool(self.values)
            self.values = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            self.values.extend(items)
            changed = changed or bool(items)
        return changed

    def get(self) -> Sequence[Value]:
        if not self.values:
            raise EmptyChannelError()
        return list(self.values)

    def is_available(self) -> bool:
        return bool(self.values)

    def checkpoint(self) -> Any:
        return list(self.values)

    def _restore(self, checkpoint: Any) -> None:
        self.values = [] if checkpoint is MISSING or checkpoint is None else list(checkpoint)
