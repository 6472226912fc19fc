"""The public API surface, the `StateGraph` builder, and compile-time validation."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, GraphValidationError, InMemorySaver, InvalidUpdateError, Send
from hitl_async.graph import END, START, StateGraph


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    x: int


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def logger(name: str, calls: list[str] | None = None) -> Callable[[S], dict[str, Any]]:
    def node(state: S) -> dict[str, Any]:
        if calls is not None:
            calls.append(name)
        return {"log": [name]}

    node.__name__ = name
    return node


# -- 1. public API ---------------------------------------------------------------------------------


def test_public_api_is_importable_from_every_documented_module() -> None:
    import hitl_async
    import hitl_async.checkpoint.memory as memory
    import hitl_async.graph as graph
    import hitl_async.types as types

    for name in (
        "StateGraph",
        "START",
        "END",
        "interrupt",
        "Command",
        "Send",
        "Interrupt",
        "RetryPolicy",
        "StateSnapshot",
        "PregelTask",
        "InMemorySaver",
        "GraphRecursionError",
        "GraphValidationError",
        "InvalidUpdateError",
        "UnknownInterruptError",
        "NoPendingInterruptError",
        "AmbiguousResumeError",
        "CheckpointerRequiredError",
    ):
        assert hasattr(hitl_async, name), name
    for name in ("StateGraph", "START", "END"):
        assert getattr(graph, name) is getattr(hitl_async, name)
    for name in ("Command", "Send", "Interrupt", "interrupt", "RetryPolicy", "StateSnapshot"):
        assert getattr(types, name) is getattr(hitl_async, name)
    assert memory.InMemorySaver is hitl_async.InMemorySaver
    assert START == "__start__" and END == "__end__"


# -- 2. building and running -----------------------------------------------------------------------


def test_add_node_by_name_and_by_function_and_add_edge() -> None:
    def alpha(state: S) -> dict[str, Any]:
        return {"log": ["alpha"]}

    b = StateGraph(S)
    assert b.add_node(alpha) is b
    b.add_node("beta", logger("beta"))
    b.add_edge(START, "alpha").add_edge("alpha", "beta").add_edge("beta", END)
    g = b.compile()
    assert set(g.nodes) == {"alpha", "beta"}
    assert g.invoke({"log": []}) == {"log": ["alpha", "beta"]}
    assert list(g.stream({"log": []})) == [
        {"alpha": {"log": ["alpha"]}},
        {"beta": {"log": ["beta"]}},
    ]


def test_join_edge_waits_for_both_sources() -> None:
    calls: list[str] = []
    b = StateGraph(S)
    for n in ("a", "b", "c"):
        b.add_node(n, logger(n, calls))
    b.add_edge(START, "a")
    b.add_edge(START, "b")
    b.add_edge(["a", "b"], "c")
    g = b.compile(checkpointer=InMemorySaver())
    assert g.invoke({"log": []}, cfg()) == {"log": ["a", "b", "c"]}
    assert calls.count("c") == 1
    history = list(g.get_state_history(cfg()))
    assert [s.metadata["step"] for s in history] == [2, 1, 0, -1]
    # a and b ran together in step 1; c alone in step 2
    assert history[1].next == ("c",)
    assert history[1].values == {"log": ["a", "b"]}


def test_join_edge_with_uneven_branches_runs_target_once_after_both() -> None:
    calls: list[str] = []
    b = StateGraph(S)
    for n in ("a", "a2", "b", "c"):
        b.add_node(n, logger(n, calls))
    b.add_edge(START, "a")
    b.add_edge(START, "b")
    b.add_edge("a", "a2")
    b.add_edge(["a2", "b"], "c")
    g = b.compile(checkpointer=InMemorySaver())
    out = g.invoke({"log": []}, cfg())
    assert calls.count("c") == 1
    assert out["log"][-1] == "c"
    assert sorted(out["log"]) == ["a", "a2", "b", "c"]
    assert calls.index("c") > calls.index("a2") and calls.index("c") > calls.index("b")
    assert g.get_state(cfg()).metadata["step"] == 3


def test_conditional_edges_with_dict_path_map() -> None:
    b = StateGraph(S)
    b.add_node("start", lambda s: {"log": ["start"]})
    b.add_node("big", logger("big"))
    b.add_node("small", logger("small"))
    b.add_edge(START, "start")
    b.add_conditional_edges("start", lambda s: s["x"] > 10, {True: "big", False: "small"})
    g = b.compile()
    assert g.invoke({"x": 50, "log": []})["log"] == ["start", "big"]
    assert g.invoke({"x": 1, "log": []})["log"] == ["start", "small"]


def test_conditional_edges_with_list_path_map_list_return_and_end() -> None:
    def path(state: S) -> Any:
        if state["x"] == 0:
            return END
        if state["x"] == 1:
            return "p"
        return ["p", "q"]

    b = StateGraph(S)
    b.add_node("start", logger("start"))
    b.add_node("p", logger("p"))
    b.add_node("q", logger("q"))
    b.add_edge(START, "start")
    b.add_conditional_edges("start", path, ["p", "q", END])
    g = b.compile(checkpointer=InMemorySaver())
    assert g.invoke({"x": 0, "log": []}, cfg("end"))["log"] == ["start"]
    assert g.invoke({"x": 1, "log": []}, cfg("one"))["log"] == ["start", "p"]
    assert g.invoke({"x": 2, "log": []}, cfg("two"))["log"] == ["start", "p", "q"]
    # p and q of the list return run in the same superstep
    assert g.get_state(cfg("two")).metadata["step"] == 2


def test_conditional_edge_path_return_not_in_path_map_fails() -> None:
    b = StateGraph(S)
    b.add_node("start", logger("start"))
    b.add_node("p", logger("p"))
    b.add_edge(START, "start")
    b.add_conditional_edges("start", lambda s: "elsewhere", {"here": "p"})
    with pytest.raises(InvalidUpdateError, match="elsewhere"):
        b.compile().invoke({"log": []})


def test_add_sequence_chains_nodes_in_order() -> None:
    b = StateGraph(S)
    b.add_sequence([logger("one"), logger("two"), ("three", logger("three"))])
    b.add_edge(START, "one")
    assert b.compile().invoke({"log": []}) == {"log": ["one", "two", "three"]}


def test_nodes_returning_dict_none_and_command() -> None:
    def none_node(state: S) -> None:
        return None

    def cmd_node(state: S) -> Command[str]:
        return Command(update={"x": 7}, goto="target")

    b = StateGraph(S)
    b.add_node("none_node", none_node)
    b.add_node("cmd_node", cmd_node, destinations=("target", "unused"))
    b.add_node("target", logger("target"))
    b.add_node("unused", logger("unused"))
    b.add_edge(START, "none_node")
    b.add_edge("none_node", "cmd_node")
    g = b.compile()
    events = list(g.stream({"x": 1, "log": []}))
    assert events == [
        {"none_node": None},
        {"cmd_node": {"x": 7}},
        {"target": {"log": ["target"]}},
    ]


def test_command_with_goto_only_streams_none_update() -> None:
    b = StateGraph(S)
    b.add_node("router", lambda s: Command(goto="t"), destinations=("t",))
    b.add_node("t", logger("t"))
    b.add_edge(START, "router")
    assert list(b.compile().stream({"log": []})) == [{"router": None}, {"t": {"log": ["t"]}}]


class Fan(TypedDict, total=False):
    items: list[str]
    results: Annotated[list[str], operator.add]


def _worker(arg: dict[str, Any]) -> dict[str, Any]:
    return {"results": [arg["item"].upper()]}


def test_send_fan_out_from_conditional_edge() -> None:
    seen: list[Any] = []

    def worker(arg: dict[str, Any]) -> dict[str, Any]:
        seen.append(arg)
        return _worker(arg)

    b = StateGraph(Fan)
    b.add_node("plan", lambda s: None)
    b.add_node("worker", worker)
    b.add_edge(START, "plan")
    b.add_conditional_edges("plan", lambda s: [Send("worker", {"item": i}) for i in s["items"]])
    g = b.compile()
    out = g.invoke({"items": ["a", "b", "c"]})
    assert out["results"] == ["A", "B", "C"]
    assert sorted(seen, key=lambda a: a["item"]) == [{"item": "a"}, {"item": "b"}, {"item": "c"}]


def test_send_fan_out_from_command_goto() -> None:
    b = StateGraph(Fan)
    b.add_node(
        "plan",
        lambda s: Command(
            update={"results": ["plan"]}, goto=[Send("worker", {"item": i}) for i in s["items"]]
        ),
        destinations=("worker",),
    )
    b.add_node("worker", _worker)
    b.add_node("after", lambda s: {"results": ["after"]})
    b.add_edge(START, "plan")
    b.add_edge("worker", "after")
    out = b.compile().invoke({"items": ["x", "y"]})
    assert out["results"] == ["plan", "X", "Y", "after"]


def test_compile_options_are_kept() -> None:
    saver = InMemorySaver()
    b = StateGraph(S)
    b.add_sequence([logger("a"), logger("b")])
    b.add_edge(START, "a")
    g = b.compile(checkpointer=saver, interrupt_before=["b"], interrupt_after=["a"])
    assert g.checkpointer is saver
    assert g.interrupt_before_nodes == ["b"]
    assert g.interrupt_after_nodes == ["a"]
    assert b.compile().checkpointer is None


# -- 2. validation ---------------------------------------------------------------------------------


def _two_nodes() -> StateGraph:
    b = StateGraph(S)
    b.add_node("a", logger("a"))
    b.add_node("b", logger("b"))
    b.add_edge(START, "a")
    return b


def test_unknown_edge_target_is_named() -> None:
    b = _two_nodes()
    b.add_edge("a", "nowhere")
    with pytest.raises(GraphValidationError, match=r"'a' -> 'nowhere'.*unknown node 'nowhere'"):
        b.compile()


def test_unknown_edge_source_is_named() -> None:
    b = _two_nodes()
    b.add_edge("ghost", "b")
    with pytest.raises(GraphValidationError, match="unknown node 'ghost'"):
        b.compile()


def test_unknown_join_source_is_named() -> None:
    b = _two_nodes()
    b.add_edge(["a", "phantom"], "b")
    with pytest.raises(GraphValidationError, match="unknown node 'phantom'"):
        b.compile()


def test_no_entry_point() -> None:
    b = StateGraph(S)
    b.add_node("a", logger("a"))
    b.add_edge("a", END)
    with pytest.raises(GraphValidationError, match="entry point"):
        b.compile()


def test_duplicate_node_is_named() -> None:
    b = _two_nodes()
    with pytest.raises(GraphValidationError, match="'a' is already"):
        b.add_node("a", logger("a"))
        b.compile()


@pytest.mark.parametrize("name", [START, END, "__interrupt__"])
def test_reserved_node_name_is_named(name: str) -> None:
    b = _two_nodes()
    with pytest.raises(GraphValidationError, match=f"{name!r} is reserved"):
        b.add_node(name, logger("x"))
        b.compile()


@pytest.mark.parametrize("option", ["interrupt_before", "interrupt_after"])
def test_bad_interrupt_node_name_is_named(option: str) -> None:
    b = _two_nodes()
    with pytest.raises(GraphValidationError, match=rf"{option}.*unknown node 'nope'"):
        b.compile(**{option: ["nope"]})


def test_unknown_path_map_target_is_named() -> None:
    b = _two_nodes()
    b.add_conditional_edges("a", lambda s: "go", {"go": "missing"})
    with pytest.raises(GraphValidationError, match=r"conditional edge from 'a'.*'missing'"):
        b.compile()


def test_unknown_destination_is_named() -> None:
    b = StateGraph(S)
    b.add_node("a", lambda s: Command(goto="b"), destinations=("b", "zzz"))
    b.add_node("b", logger("b"))
    b.add_edge(START, "a")
    with pytest.raises(GraphValidationError, match=r"node 'a' destinations.*'zzz'"):
        b.compile()


def test_valid_graph_with_end_targets_compiles() -> None:
    b = _two_nodes()
    b.add_conditional_edges("a", lambda s: "y", {"x": "b", "y": END})
    b.add_edge("b", END)
    assert b.compile().invoke({"log": []}) == {"log": ["a"]}
