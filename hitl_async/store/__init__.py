"""Long-term memory shared across threads: LangGraph's Store API on every driver.

`from langgraph.store.base import BaseStore, Item` becomes `from hitl_async.store.base import
...` (or `hitl_async.store`), `from langgraph.store.memory import InMemoryStore` becomes
`from hitl_async.store.memory import InMemoryStore`; durable stores come from
`connect_store(url)` on the same URLs as checkpoints.
"""

from __future__ import annotations

from hitl_async.store.backend import PutRow, StoreBackend, StoredRow
from hitl_async.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    NamespaceMatchType,
    NamespacePath,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from hitl_async.store.connect import connect_store
from hitl_async.store.driver import BackendStore
from hitl_async.store.embed import (
    AEmbeddingsFunc,
    Embeddings,
    EmbeddingsFunc,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)
from hitl_async.store.errors import (
    InvalidFilterError,
    InvalidIndexConfigError,
    InvalidNamespaceError,
    InvalidStoreRequestError,
    StoreCorruptError,
    StoreValueError,
)
from hitl_async.store.memory import InMemoryStore

__all__ = [
    "NOT_PROVIDED",
    "AEmbeddingsFunc",
    "BackendStore",
    "BaseStore",
    "Embeddings",
    "EmbeddingsFunc",
    "GetOp",
    "InMemoryStore",
    "IndexConfig",
    "InvalidFilterError",
    "InvalidIndexConfigError",
    "InvalidNamespaceError",
    "InvalidStoreRequestError",
    "Item",
    "ListNamespacesOp",
    "MatchCondition",
    "NamespaceMatchType",
    "NamespacePath",
    "NotProvided",
    "Op",
    "PutOp",
    "PutRow",
    "Result",
    "SearchItem",
    "SearchOp",
    "StoreBackend",
    "StoreCorruptError",
    "StoreValueError",
    "StoredRow",
    "TTLConfig",
    "connect_store",
    "ensure_embeddings",
    "get_text_at_path",
    "tokenize_path",
]
