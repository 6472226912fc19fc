"""`Topic`: a state key that collects the values written to it as a list."""

from __future__ import annotations

from typing import Any

from hitl_async.channels.base import BaseChannel, Value

__all__ = ["Topic"]


class Topic(BaseChannel[Value]):
    """A list of the values written in a step (a written list adds its items, not itself).
    `accumulate=False`: each step that runs starts the list afresh, so it holds the last step's
    writes and is cleared by a step that writes none; `accumulate=True`: writes add up across
    steps. An empty topic is no key of the state."""

    __slots__ = ("accumulate",)

    def __init__(self, typ: Any, accumulate: bool = False) -> None:
        super().__init__(typ)
        self.accumulate = accumulate

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Topic) and other.accumulate == self.accumulate

    def __hash__(self) -> int:
        return hash((Topic, self.accumulate))
