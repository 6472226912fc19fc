"""`Overwrite`: a write that replaces a reducer key's value, restated from LangGraph 1.2.22's
`Overwrite` docs and its BinaryOperatorAggregate behaviour (observed side by side)."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, InvalidUpdateError, interrupt
from hitl_async.graph import START, StateGraph
from hitl_async.types import Overwrite

pytestmark = pytest.mark.anyio


class S(TypedDict, total=False):
    msgs: Annotated[list[str], operator.add]
    plain: str


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _add(value: str) -> Any:
    def node(state: S) -> dict[str, Any]:
        return {"msgs": [value]}

    return node


def _replace(value: Any) -> Any:
    def node(state: S) -> dict[str, Any]:
        return {"msgs": value}

    return node


async def test_an_overwrite_replaces_the_value_instead_of_reducing() -> None:
    g = StateGraph(S)
    g.add_sequence([("a", _add("a")), ("b", _replace(Overwrite(["b"]))), ("c", _add("c"))])
    g.add_edge(START, "a")
    out = await g.compile().ainvoke({"msgs": ["START"]})
    assert out == {"msgs": ["b", "c"]}


@pytest.mark.parametrize(
    "form", [{"__overwrite__": ["x"]}, {"type": "__overwrite__", "value": ["x"]}]
)
async def test_the_json_forms_an_http_client_sends_overwrite_too(form: dict[str, Any]) -> None:
    g = StateGraph(S)
    g.add_sequence([("a", _add("a")), ("b", _replace(form))])
    g.add_edge(START, "a")
    assert await g.compile().ainvoke({"msgs": ["START"]}) == {"msgs": ["x"]}


async def test_in_a_parallel_step_writes_after_the_overwrite_are_dropped() -> None:
    # Writes apply in LangGraph's order (by node name): b's Overwrite, then c's add, dropped.
    g = StateGraph(S)
    g.add_node("b", _replace(Overwrite(["b"])))
    g.add_node("c", _add("c"))
    g.add_edge(START, "b")
    g.add_edge(START, "c")
    assert await g.compile().ainvoke({"msgs": ["START"]}) == {"msgs": ["b"]}


async def test_two_overwrites_of_one_key_in_one_step_are_refused() -> None:
    g = StateGraph(S)
    g.add_node("b", _replace(Overwrite(["b"])))
    g.add_node("b2", _replace(Overwrite(["x"])))
    g.add_edge(START, "b")
    g.add_edge(START, "b2")
    with pytest.raises(InvalidUpdateError, match=r"'msgs'.*more than one of them with Overwrite"):
        await g.compile().ainvoke({"msgs": ["START"]})


async def test_an_overwrite_of_a_plain_key_writes_its_value() -> None:
    # LangGraph stores the Overwrite object itself in a key without a reducer; we store the
    # value (README: differences).
    g = StateGraph(S)
    g.add_node("p", lambda s: {"plain": Overwrite("p")})
    g.add_edge(START, "p")
    assert await g.compile().ainvoke({"msgs": []}) == {"msgs": [], "plain": "p"}


async def test_a_stored_overwrite_of_a_finished_sibling_applies_on_resume(saver: Any) -> None:
    """b finishes (its Overwrite kept as a pending write in the store) while its sibling
    pauses; the resumed step applies it as if the step had run at once."""

    def ask(state: S) -> dict[str, Any]:
        return {"msgs": [interrupt("ok?")]}

    g = StateGraph(S)
    g.add_node("b", _replace(Overwrite(["b"])))
    g.add_node("ask", ask)
    g.add_edge(START, "b")
    g.add_edge(START, "ask")
    app = g.compile(checkpointer=saver)
    first = await app.ainvoke({"msgs": ["START"]}, cfg())
    assert "__interrupt__" in first
    # ask's answer comes first by name order, then b's Overwrite replaces everything
    assert await app.ainvoke(Command(resume="yes"), cfg()) == {"msgs": ["b"]}
