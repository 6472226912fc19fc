"""Graphs for the `hitl` CLI tests (`apps.cli_app:...` with `tests/` on PYTHONPATH): the same
approval flow as a `StateGraph`, a `CompiledStateGraph` and a factory, plus things that are not
graphs, for the loader's errors."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from hitl_async import END, START, InMemorySaver, StateGraph, interrupt


class Expense(TypedDict, total=False):
    item: str
    amount: float
    decision: str
    outcome: str


def review(state: Expense) -> dict[str, Any]:
    """Ask a human whether to approve the expense."""
    answer = interrupt({"question": f"Approve {state['item']} for ${state['amount']:.2f}?"})
    return {"decision": "approved" if answer in ("yes", True) else "rejected"}


def book(state: Expense) -> dict[str, Any]:
    return {"outcome": f"{state['decision']}: {state['item']}"}


def make_builder() -> StateGraph:
    """The expense approval graph, not compiled."""
    builder = StateGraph(Expense)
    builder.add_node("review", review)
    builder.add_node("book", book)
    builder.add_edge(START, "review")
    builder.add_edge("review", "book")
    builder.add_edge("book", END)
    return builder


builder = make_builder()
"""A `StateGraph`: the CLI compiles it with the store."""

graph = make_builder().compile(checkpointer=InMemorySaver(), name="expenses")
"""A `CompiledStateGraph` bound to a private store: the CLI rebinds it to its own."""


def make_graph() -> Any:
    """A zero-argument factory returning a compiled graph."""
    return make_builder().compile(name="expenses")


class Pair(TypedDict, total=False):
    legal: str
    finance: str


def _asks(key: str) -> Any:
    def ask(state: Pair) -> dict[str, Any]:
        return {key: interrupt({"question": f"{key} approves?"})}

    return ask


def make_two_reviews() -> StateGraph:
    """Two reviews in parallel: two interrupts pending at once (a resume needs --id)."""
    builder = StateGraph(Pair)
    builder.add_node("legal", _asks("legal"))
    builder.add_node("finance", _asks("finance"))
    builder.add_edge(START, "legal")
    builder.add_edge(START, "finance")
    builder.add_edge("legal", END)
    builder.add_edge("finance", END)
    return builder


two_reviews = make_two_reviews()
"""Two interrupts pending at once."""

answer = 42
"""Not a graph."""


def needs_arguments(store: str) -> Any:
    """A callable the CLI cannot call."""
    return make_builder().compile()
