"""Parity with LangGraph: what a node may return. A dict, None, a Command, or a list holding at
least one Command is an update; any other list or tuple (the empty list included) is refused
with `InvalidUpdateError` before anything of the step is written, as LangGraph's
`StateGraph` does ("Expected dict, got []"), on every driver. A root-schema state takes a list
as its value."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import START, Command, InvalidUpdateError, StateGraph

pytestmark = pytest.mark.anyio


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def returning(value: Any, saver: Any) -> Any:
    g = StateGraph(Log)
    g.add_node("first", lambda s: {"log": ["first"]})
    g.add_node("odd", lambda s: value)
    g.add_edge(START, "first")
    g.add_edge("first", "odd")
    return g.compile(checkpointer=saver)


# LangGraph behaviour: StateGraph's node writer (`_get_updates`) raises InvalidUpdateError
# "Expected dict, got []" for a list with no Command in it, the empty list included.
@pytest.mark.parametrize("value", [[], (), [{"log": ["x"]}], [("log", ["x"])], [None]])
async def test_a_list_without_a_command_is_refused(saver: Any, value: Any) -> None:
    app = returning(value, saver)
    config = cfg()
    with pytest.raises(InvalidUpdateError, match="'odd' returned"):
        await app.ainvoke({"log": []}, config)
    state = await app.aget_state(config)
    assert state.values == {"log": ["first"]}  # the failed step wrote nothing
    assert state.next == ("odd",)


# LangGraph behaviour: the same list with one Command in it is a list of updates, in order.
async def test_the_same_list_with_a_command_is_applied_in_order(saver: Any) -> None:
    app = returning([{"log": ["a"]}, Command(update={"log": ["b"]})], saver)
    assert await app.ainvoke({"log": []}, cfg()) == {"log": ["first", "a", "b"]}


# LangGraph behaviour: with a root schema (`StateGraph(Annotated[list, operator.add])`) a list
# is the state's value, so `[]` is a valid (empty) update there.
async def test_a_root_list_state_takes_an_empty_list(saver: Any) -> None:
    g = StateGraph(Annotated[list, operator.add])
    g.add_node("a", lambda s: ["a"])
    g.add_node("none", lambda s: [])
    g.add_edge(START, "a")
    g.add_edge("a", "none")
    app = g.compile(checkpointer=saver)
    assert await app.ainvoke(["in"], cfg()) == ["in", "a"]
