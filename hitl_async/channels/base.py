"""The base of the channel classes a state key may be annotated with
(`Annotated[str, EphemeralValue(str)]`), as LangGraph's `langgraph.channels` are used in state
schemas. They are markers: the engine reads which class (and its settings) a key names and
folds that key's writes accordingly; they hold no value themselves."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = ["BaseChannel", "Value"]

Value = TypeVar("Value")


class BaseChannel(Generic[Value]):
    """A state key's channel kind: `typ` is the type of its value. Subclasses say how the key
    merges the writes of a step, and whether it is kept across steps and checkpoints."""

    __slots__ = ("key", "typ")

    def __init__(self, typ: Any, key: str = "") -> None:
        self.typ = typ
        self.key = key
        """The state key it is the channel of (set when a schema is read; "" until then)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.typ, '__name__', self.typ)!s})"
