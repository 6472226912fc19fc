"""LangGraph's Store API (`langgraph.store.base`): items, operations and `BaseStore`.

A store keeps long-term memory shared across threads: JSON documents under a hierarchical
namespace (a tuple of labels) and a key. The names, arguments and defaults are LangGraph's, so a
port is a rename of imports; every hitl-async store also supports TTLs (minutes, refreshed on
read) and semantic search when given an `index=` configuration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypedDict, cast

from hitl_async.store.codec import check_key, check_namespace
from hitl_async.store.embed import AEmbeddingsFunc, Embeddings, EmbeddingsFunc
from hitl_async.store.errors import InvalidNamespaceError, InvalidStoreRequestError

__all__ = [
    "NOT_PROVIDED",
    "BaseStore",
    "GetOp",
    "IndexConfig",
    "InvalidNamespaceError",
    "Item",
    "ListNamespacesOp",
    "MatchCondition",
    "NamespaceMatchType",
    "NamespacePath",
    "NotProvided",
    "Op",
    "PutOp",
    "Result",
    "SearchItem",
    "SearchOp",
    "TTLConfig",
    "ensure_refresh",
    "ensure_ttl",
]


class NotProvided:
    """Sentinel for "argument not given" (falsy), as in LangGraph."""

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_PROVIDED = NotProvided()


class Item:
    """A stored document: its `value` (a dict), `key`, `namespace` and UTC timestamps."""

    __slots__ = ("created_at", "key", "namespace", "updated_at", "value")

    def __init__(
        self,
        *,
        value: dict[str, Any],
        key: str,
        namespace: tuple[str, ...],
        created_at: datetime | str,
        updated_at: datetime | str,
    ) -> None:
        self.value = value
        self.key = key
        self.namespace = tuple(namespace)
        # Accept ISO strings too, for items rebuilt from JSON (as LangGraph does).
        self.created_at = (
            datetime.fromisoformat(created_at) if isinstance(created_at, str) else created_at
        )
        self.updated_at = (
            datetime.fromisoformat(updated_at) if isinstance(updated_at, str) else updated_at
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Item):
            return False
        return (
            self.value == other.value
            and self.key == other.key
            and self.namespace == other.namespace
            and self.created_at == other.created_at
            and self.updated_at == other.updated_at
        )

    def __hash__(self) -> int:
        return hash((self.namespace, self.key))

    def dict(self) -> dict[str, Any]:
        """A JSON-ready dict (namespace as a list, timestamps as ISO strings)."""
        return {
            "namespace": list(self.namespace),
            "key": self.key,
            "value": self.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.dict().items())
        return f"{type(self).__name__}({fields})"


class SearchItem(Item):
    """An item found by `search()`, with its similarity `score` (None without a query)."""

    __slots__ = ("score",)

    def __init__(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: datetime,
        updated_at: datetime,
        score: float | None = None,
    ) -> None:
        super().__init__(
            value=value, key=key, namespace=namespace, created_at=created_at, updated_at=updated_at
        )
        self.score = score

    def dict(self) -> dict[str, Any]:
        result = super().dict()
        result["score"] = self.score
        return result


class GetOp(NamedTuple):
    """Read one item by namespace and key."""

    namespace: tuple[str, ...]
    key: str
    refresh_ttl: bool = True


class SearchOp(NamedTuple):
    """Find items under a namespace prefix, by filter and/or natural-language query."""

    namespace_prefix: tuple[str, ...]
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    query: str | None = None
    refresh_ttl: bool = True


NamespacePath = tuple[str, ...]
"""A namespace path for listing; a "*" label matches any one label."""

NamespaceMatchType = Literal["prefix", "suffix"]


class MatchCondition(NamedTuple):
    """A prefix or suffix pattern that listed namespaces must match."""

    match_type: NamespaceMatchType
    path: NamespacePath


class ListNamespacesOp(NamedTuple):
    """List the namespaces that hold items, optionally matched and truncated to `max_depth`."""

    match_conditions: tuple[MatchCondition, ...] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


class PutOp(NamedTuple):
    """Store (or, with `value=None`, delete) one item; `ttl` in minutes, `index` as in `put()`."""

    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any] | None
    index: Literal[False] | list[str] | None = None  # type: ignore[assignment]  # LangGraph's name
    ttl: float | None = None


Op = GetOp | SearchOp | PutOp | ListNamespacesOp
Result = Item | list[Item] | list[SearchItem] | list[tuple[str, ...]] | None


class TTLConfig(TypedDict, total=False):
    """Time-to-live settings of a store (LangGraph's keys; minutes throughout)."""

    refresh_on_read: bool
    """Whether get/search refresh an item's expiry by default (default True)."""
    default_ttl: float | None
    """TTL in minutes of items put without `ttl=` (default None: they never expire)."""
    sweep_interval_minutes: float | None
    """How often the sweeper deletes expired items (default 5 minutes when it runs)."""
    omit_expired: bool
    """Whether reads skip items whose TTL passed but that were not swept yet. hitl-async
    defaults this to True (an expired item is gone whether or not the sweeper ran); LangGraph
    defaults it to False."""


class IndexConfig(TypedDict, total=False):
    """Semantic search settings: `embed` (an Embeddings object, or a sync or async function from
    texts to vectors), `dims` (vector length) and `fields` (JSON paths to embed, default
    `["$"]`: the whole value)."""

    dims: int
    embed: Embeddings | EmbeddingsFunc | AEmbeddingsFunc
    fields: list[str] | None


def ensure_refresh(ttl_config: TTLConfig | None, refresh_ttl: bool | None) -> bool:
    """The effective `refresh_ttl` of a read: the argument, else the config, else True."""
    if refresh_ttl is not None:
        return refresh_ttl
    if ttl_config is not None:
        return bool(ttl_config.get("refresh_on_read", True))
    return True


def ensure_ttl(ttl_config: TTLConfig | None, ttl: float | NotProvided | None) -> float | None:
    """The effective TTL (minutes) of a put: the argument, else the config's default."""
    if isinstance(ttl, NotProvided):
        return ttl_config.get("default_ttl") if ttl_config else None
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        raise InvalidStoreRequestError(
            f"ttl is a positive number of minutes (or None for no expiry), got {ttl!r}"
        )
    return ttl


def _match_conditions(
    prefix: NamespacePath | None, suffix: NamespacePath | None
) -> tuple[MatchCondition, ...]:
    conditions = []
    if prefix:
        conditions.append(MatchCondition("prefix", tuple(prefix)))
    if suffix:
        conditions.append(MatchCondition("suffix", tuple(suffix)))
    return tuple(conditions)


class BaseStore(ABC):
    """A key-value store of JSON documents under hierarchical namespaces.

    Subclasses implement `batch` and `abatch`; every other method is built on them, so each call
    is a single batch of one operation. Results come in the order of the operations.
    """

    supports_ttl: bool = False
    ttl_config: TTLConfig | None = None
    any_loop: bool = False
    """True when the store works from any event loop of the process at once: `ainvoke` of an
    all-sync graph may then run on an engine thread's loop (see `BaseSaver.any_loop`)."""

    __slots__ = ("__weakref__",)

    @abstractmethod
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run several operations; one result per operation, in order."""

    @abstractmethod
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run several operations asynchronously; one result per operation, in order."""

    # --- sync -------------------------------------------------------------------------------

    def get(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """The item at `namespace`/`key`, or None."""
        op = GetOp(namespace, check_key(key), ensure_refresh(self.ttl_config, refresh_ttl))
        return cast(Item | None, self.batch([op])[0])

    def search(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Items under `namespace_prefix` matching `filter`, most recently updated first, or by
        similarity to `query` when the store has an index."""
        refresh = ensure_refresh(self.ttl_config, refresh_ttl)
        op = SearchOp(tuple(namespace_prefix), filter, limit, offset, query, refresh)
        return cast(list[SearchItem], self.batch([op])[0])

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Store `value` (a JSON dict) at `namespace`/`key`, replacing what was there."""
        check_namespace(namespace, put=True)
        self._check_ttl_supported(ttl)
        op = PutOp(namespace, check_key(key), value, index, ensure_ttl(self.ttl_config, ttl))
        self.batch([op])

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        """Delete the item at `namespace`/`key` (nothing happens if there is none)."""
        self.batch([PutOp(namespace, check_key(key), None)])

    def list_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """Namespaces that hold items, sorted; "*" in `prefix`/`suffix` matches any one label;
        `max_depth` truncates them (duplicates removed)."""
        op = ListNamespacesOp(_match_conditions(prefix, suffix), max_depth, limit, offset)
        return cast(list[tuple[str, ...]], self.batch([op])[0])

    # --- async ------------------------------------------------------------------------------

    async def aget(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """Async `get`."""
        op = GetOp(namespace, check_key(key), ensure_refresh(self.ttl_config, refresh_ttl))
        return cast(Item | None, (await self.abatch([op]))[0])

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Async `search`."""
        refresh = ensure_refresh(self.ttl_config, refresh_ttl)
        op = SearchOp(tuple(namespace_prefix), filter, limit, offset, query, refresh)
        return cast(list[SearchItem], (await self.abatch([op]))[0])

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Async `put`."""
        check_namespace(namespace, put=True)
        self._check_ttl_supported(ttl)
        op = PutOp(namespace, check_key(key), value, index, ensure_ttl(self.ttl_config, ttl))
        await self.abatch([op])

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        """Async `delete`."""
        await self.abatch([PutOp(namespace, check_key(key), None)])

    async def alist_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """Async `list_namespaces`."""
        op = ListNamespacesOp(_match_conditions(prefix, suffix), max_depth, limit, offset)
        return cast(list[tuple[str, ...]], (await self.abatch([op]))[0])

    # --- TTL --------------------------------------------------------------------------------

    def _check_ttl_supported(self, ttl: float | NotProvided | None) -> None:
        if ttl is not None and not isinstance(ttl, NotProvided) and not self.supports_ttl:
            raise NotImplementedError(
                f"TTL is not supported by {type(self).__name__}. "
                "Use a store implementation that supports TTL or set ttl=None."
            )

    async def asweep_ttl(self) -> int:
        """Delete the items whose TTL passed; the number deleted (0 for stores without TTL)."""
        return 0
