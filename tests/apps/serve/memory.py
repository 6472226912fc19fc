"""A graph with long-term memory, served by the store tests: `remember` (a sync node, through
`get_store()`) saves the input's note under ("memories", user), `recall` (async, through
`runtime.store`) reads back every memory of the user — including those put through the API."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, get_store
from hitl_async.runtime import Runtime
from hitl_async.store import InMemoryStore


class MemoryState(TypedDict, total=False):
    user: str
    note: str
    recalled: list[str]


def remember(state: MemoryState) -> dict[str, Any]:
    note = state.get("note")
    if note:
        get_store().put(("memories", state["user"]), f"note-{note}", {"text": note})
    return {}


async def recall(state: MemoryState, runtime: Runtime[None]) -> dict[str, Any]:
    found = await runtime.store.asearch(("memories", state["user"]), limit=100)
    return {"recalled": sorted(item.value["text"] for item in found)}


builder = StateGraph(MemoryState)
builder.add_node("remember", remember)
builder.add_node("recall", recall)
builder.add_edge(START, "remember")
builder.add_edge("remember", "recall")
builder.add_edge("recall", END)
graph = builder.compile(store=InMemoryStore())  # the server's store replaces this one
