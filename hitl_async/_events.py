"""The events of one run on their way to the stream: each stream mode's events are kept only
when the caller asked for that mode, and handed over in the order they were emitted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hitl_async.errors import InvalidConfigError

__all__ = ["STREAM_MODES", "Event", "RunEvents", "parse_stream_mode"]

STREAM_MODES = frozenset(
    {"values", "updates", "custom", "debug", "checkpoints", "tasks", "messages"}
)
"""The stream modes a run can emit."""

Event = tuple[Any, ...]
"""`(mode, chunk)`, or `(mode, chunk, namespace)` for an event of a subgraph."""


class RunEvents:
    """The buffered events of one run and the stream modes it emits."""

    __slots__ = ("buffer", "modes")

    def __init__(self, modes: Iterable[str]) -> None:
        self.modes = frozenset(modes)
        self.buffer: list[Event] = []

    def wants(self, mode: str) -> bool:
        return mode in self.modes

    def emit(self, mode: str, chunk: Any) -> None:
        """An event of `mode` (dropped unless the caller streams that mode)."""
        if mode in self.modes:
            self.buffer.append((mode, chunk))

    def custom(self, chunk: Any) -> None:
        """What a node wrote through its stream writer (only connected in "custom" mode)."""
        self.buffer.append(("custom", chunk))

    def take(self) -> list[Event]:
        """The events emitted since the last `take()`."""
        events, self.buffer = self.buffer, []
        return events


def parse_stream_mode(stream_mode: str | Sequence[str] | None) -> tuple[tuple[str, ...], bool]:
    """The modes a `stream_mode=` argument asks for, and whether it named a single mode (events
    are then yielded without their mode)."""
    if stream_mode is None:
        return ("updates",), True
    if isinstance(stream_mode, str):
        modes: tuple[str, ...] = (stream_mode,)
        single = True
    else:
        modes, single = tuple(stream_mode), False
    for m in modes:
        if m not in STREAM_MODES:
            raise InvalidConfigError(
                f"unknown stream_mode {m!r}; valid modes are {sorted(STREAM_MODES)}"
            )
    return modes, single
