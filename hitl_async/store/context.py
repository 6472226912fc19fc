"""`get_store()`: the store of the running graph, from inside a node or task."""

from __future__ import annotations

from typing import Any

from hitl_async.runtime import get_runtime

__all__ = ["get_store"]


def get_store() -> Any:
    """The store given to `compile(store=...)` (or `@entrypoint(store=...)`) of the graph whose
    node is running, as `langgraph.config.get_store()` returns it; None when it has none.
    Raises `RuntimeError` outside a running node."""
    return get_runtime().store
