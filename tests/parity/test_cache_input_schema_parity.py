"""A cached node with an input schema of its own is keyed on what it sees (its schema's keys),
not the whole state, as in LangGraph 1.2.22 (observed side by side): a change to a key it does
not read still hits the cache."""

from __future__ import annotations

from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async.cache.memory import InMemoryCache
from hitl_async.graph import START, StateGraph
from hitl_async.types import CachePolicy

pytestmark = pytest.mark.anyio


class Whole(TypedDict, total=False):
    a: int
    other: int
    out: int


class Seen(TypedDict):
    a: int


async def test_a_key_the_node_does_not_see_does_not_change_its_cache_key() -> None:
    calls: list[dict[str, Any]] = []

    def node(state: Seen) -> dict[str, Any]:
        calls.append(dict(state))
        return {"out": state["a"] * 10}

    g = StateGraph(Whole)
    g.add_node("n", node, input_schema=Seen, cache_policy=CachePolicy())
    g.add_edge(START, "n")
    app = g.compile(cache=InMemoryCache())
    assert await app.ainvoke({"a": 1, "other": 1}) == {"a": 1, "other": 1, "out": 10}
    assert await app.ainvoke({"a": 1, "other": 2}) == {"a": 1, "other": 2, "out": 10}
    assert await app.ainvoke({"a": 2, "other": 2}) == {"a": 2, "other": 2, "out": 20}
    assert calls == [{"a": 1}, {"a": 2}]
