"""The base of the channel classes a state key may be annotated with
(`Annotated[str, EphemeralValue(str)]`), as LangGraph's `langgraph.channels`. In a schema
they are markers: the engine reads which class (and its settings) a key names and folds that
key's writes itself. Used on their own they are LangGraph's channel objects: `update()` a
step's writes, `get()` the value, `checkpoint()` and `from_checkpoint()` it."""

from __future__ import annotations

import collections.abc
import typing
from abc import ABC, abstractmethod
from collections.abc import Sequence
from copy import copy as _shallow_copy
from typing import Any, Generic, Self, TypeVar

from hitl_async.errors import EmptyChannelError

__all__ = ["MISSING", "BaseChannel", "Value", "ValueChannel", "empty_value"]

Value = TypeVar("Value")


class _Missing:
    """The type of `MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""No value: what an empty channel's `checkpoint()` returns and `from_checkpoint()` takes for
"nothing stored" (LangGraph's `langgraph._internal._typing.MISSING`)."""


_CONCRETE: dict[Any, type] = {
    collections.abc.Sequence: list,
    collections.abc.MutableSequence: list,
    collections.abc.Set: set,
    collections.abc.MutableSet: set,
    collections.abc.Mapping: dict,
    collections.abc.MutableMapping: dict,
}
"""Abstract collection types and the concrete type whose empty value a fold starts from, as in
LangGraph (`Annotated[Sequence[AnyMessage], add_messages]` starts from `[]`)."""


def empty_value(annotation: Any) -> Any:
    """The value a reducer or `BinaryOperatorAggregate` starts from: the base type's empty value
    (`int()` is 0, `Sequence[str]` gives []), or `MISSING` if it has none."""
    base = annotation
    if typing.get_origin(base) is typing.Annotated:
        base = typing.get_args(base)[0]
    base = typing.get_origin(base) or base
    base = _CONCRETE.get(base, base)
    if isinstance(base, type):
        try:
            return base()
        except Exception:
            return MISSING
    return MISSING


class BaseChannel(Generic[Value], ABC):
    """A state key's channel kind: `typ` is the type of its value. Subclasses say how the key
    merges the writes of a step, and whether it is kept across steps and checkpoints."""

    __slots__ = ("key", "typ")

    def __init__(self, typ: Any, key: str = "") -> None:
        self.typ = typ
        self.key = key
        """The state key it is the channel of (set when a schema is read; "" until then)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.typ, '__name__', self.typ)!s})"

    @property
    def ValueType(self) -> Any:
        """The type `get()` returns."""
        return self.typ

    @property
    def UpdateType(self) -> Any:
        """The type of one write `update()` takes."""
        return self.typ

    @abstractmethod
    def update(self, values: Sequence[Any]) -> bool:
        """Apply one step's writes (in order); return whether the value changed."""

    @abstractmethod
    def get(self) -> Value:
        """The current value; `EmptyChannelError` when there is none."""

    @abstractmethod
    def _restore(self, checkpoint: Any) -> None:
        """Set this (fresh) copy's value from `checkpoint` (`MISSING`: empty)."""

    def is_available(self) -> bool:
        """Whether `get()` would return a value."""
        try:
            self.get()
        except EmptyChannelError:
            return False
        return True

    def checkpoint(self) -> Any:
        """What to store for the value (`MISSING` when empty)."""
        try:
            return self.get()
        except EmptyChannelError:
            return MISSING

    def from_checkpoint(self, checkpoint: Any) -> Self:
        """A new channel with this one's settings and `checkpoint`'s value."""
        new = _shallow_copy(self)
        new._restore(checkpoint)
        return new

    def copy(self) -> Self:
        """An independent channel with the same settings and value."""
        return self.from_checkpoint(self.checkpoint())

    def consume(self) -> bool:
        """Called when a node that read the channel ran; whether that changed it (never, here)."""
        return False

    def finish(self) -> bool:
        """Called when the run would end; whether that changed it (never, here)."""
        return False


class ValueChannel(BaseChannel[Value]):
    """A channel holding one value (`MISSING` when empty): what `LastValue`, `EphemeralValue`,
    `UntrackedValue` and `BinaryOperatorAggregate` share; they differ in how they take writes."""

    __slots__ = ("value",)

    def __init__(self, typ: Any, key: str = "") -> None:
        super().__init__(typ, key)
        self.value: Any = MISSING

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
