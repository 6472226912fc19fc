"""`BaseCache`: what a cache of node results offers the engine, as LangGraph's
`langgraph.cache.base.BaseCache` (sync and async twins), so a cache written for one fits the
other. Keys are `(namespace, key)`: the namespace names the node (or task), the key digests its
input; values are kept with a time to live in seconds (None: until cleared)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

ValueT = TypeVar("ValueT")
Namespace = tuple[str, ...]
FullKey = tuple[Namespace, str]

__all__ = ["BaseCache", "FullKey", "Namespace"]


class BaseCache(ABC, Generic[ValueT]):
    """A cache of node and task results. `serde` (default: hitl-async's checkpoint serializer)
    encodes what is stored, so a hit is a copy the node's caller may change freely."""

    any_loop: ClassVar[bool] = False
    """True when the cache works from any event loop of the process at once: `ainvoke` of an
    all-sync graph may then run on an engine thread's loop (see `BaseSaver.any_loop`)."""

    def __init__(self, *, serde: Any | None = None) -> None:
        if serde is None:
            from hitl_async.serde import default_serializer

            serde = default_serializer
        self.serde = serde

    @abstractmethod
    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """The values still cached for `keys` (a missing or expired key is left out)."""

    @abstractmethod
    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """Async `get()`."""

    @abstractmethod
    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | float | None]]) -> None:
        """Cache each value with its ttl in seconds (None: until cleared)."""

    @abstractmethod
    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | float | None]]) -> None:
        """Async `set()`."""

    @abstractmethod
    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Forget the values of these namespaces (None: every value)."""

    @abstractmethod
    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Async `clear()`."""
