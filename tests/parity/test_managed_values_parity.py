"""Managed state keys (`RemainingSteps`, `IsLastStep`) and the default recursion limit, as
LangGraph 1.2.22 behaves (observed side by side): the engine computes the keys for every step
from `recursion_limit`; they are never stored, returned, or taken from input."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

import pytest
from typing_extensions import TypedDict

from hitl_async import GraphRecursionError
from hitl_async.constants import DEFAULT_RECURSION_LIMIT
from hitl_async.graph import END, START, StateGraph
from hitl_async.managed import IsLastStep, ManagedValue, RemainingSteps, StepWindow

pytestmark = pytest.mark.anyio


class Budget(TypedDict):
    log: Annotated[list[Any], operator.add]
    remaining_steps: RemainingSteps
    is_last_step: IsLastStep


class Small(TypedDict):
    remaining_steps: RemainingSteps


class StepNumber(ManagedValue[int]):
    """A managed value of the test's own: the step's number in the invocation."""

    @staticmethod
    def get(scratchpad: StepWindow) -> int:
        return scratchpad.step


class Counted(TypedDict):
    log: Annotated[list[Any], operator.add]
    step: Annotated[int, StepNumber]
    remaining_steps: NotRequired[RemainingSteps]


def _looping(saver: Any) -> Any:
    """a -> b -> (a again, until `is_last_step` or nine entries): each logs what it saw."""

    def a(state: Budget) -> dict[str, Any]:
        return {"log": [("a", state["remaining_steps"], state["is_last_step"])]}

    def b(state: Budget) -> dict[str, Any]:
        return {"log": [("b", state["remaining_steps"], state["is_last_step"])]}

    def route(state: Budget) -> str:
        return END if state["is_last_step"] or len(state["log"]) > 8 else "a"

    g = StateGraph(Budget)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", route)
    return g.compile(checkpointer=saver)


async def test_nodes_and_edges_see_the_steps_left_and_the_state_never_stores_them(
    saver: Any,
) -> None:
    app = _looping(saver)
    cfg = {"configurable": {"thread_id": "1"}, "recursion_limit": 5}
    out = await app.ainvoke({"log": []}, cfg)
    # LangGraph: the first step sees limit - 1; IsLastStep is True when one step is left.
    assert out == {"log": [("a", 4, False), ("b", 3, False), ("a", 2, False), ("b", 1, True)]}
    state = await app.aget_state(cfg)
    assert set(state.values) == {"log"}


async def test_a_value_given_for_a_managed_key_is_ignored(saver: Any) -> None:
    app = _looping(saver)
    cfg = {"configurable": {"thread_id": "1"}, "recursion_limit": 50}
    out = await app.ainvoke({"log": [], "remaining_steps": 3, "is_last_step": True}, cfg)
    assert [entry[1] for entry in out["log"]] == list(range(49, 39, -1))


async def test_running_out_of_steps_raises_after_the_last_allowed_step() -> None:
    app = _looping(None)
    seen = []
    with pytest.raises(GraphRecursionError):
        async for chunk in app.astream({"log": []}, {"recursion_limit": 4}, stream_mode="values"):
            seen.append(chunk)
    assert seen[-1] == {"log": [("a", 3, False), ("b", 2, False), ("a", 1, True), ("b", 0, False)]}


def test_the_default_limit_is_langgraphs_and_the_sync_api_sees_it() -> None:
    assert DEFAULT_RECURSION_LIMIT == 10007  # LangGraph 1.2.22's, unless the env overrides it
    out = _looping(None).invoke({"log": []})
    assert out["log"][0] == ("a", DEFAULT_RECURSION_LIMIT - 1, False)
    assert len(out["log"]) == 10


async def test_a_node_input_schema_with_only_a_managed_key_gets_it() -> None:
    def node(state: Small) -> dict[str, Any]:
        return {"log": [dict(state)]}

    g = StateGraph(Budget)
    g.add_node("c", node)
    g.add_edge(START, "c")
    out = await g.compile().ainvoke({"log": []}, {"recursion_limit": 7})
    assert out == {"log": [{"remaining_steps": 6}]}


async def test_a_custom_managed_value_and_not_required_keys() -> None:
    def node(state: Counted) -> dict[str, Any]:
        return {"log": [(state["step"], state["remaining_steps"])]}

    def again(state: Counted) -> str:
        return END if len(state["log"]) == 3 else "n"

    g = StateGraph(Counted)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_conditional_edges("n", again)
    out = await g.compile().ainvoke({"log": []}, {"recursion_limit": 10})
    assert out == {"log": [(1, 9), (2, 8), (3, 7)]}
