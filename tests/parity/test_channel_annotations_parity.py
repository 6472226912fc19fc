"""State keys annotated with channel classes (`hitl_async.channels`, LangGraph's
`langgraph.channels`): what nodes read, what runs return and what is stored, restated from
LangGraph 1.2.22's behaviour observed side by side (its channels' own tests are in
tests/test_channels.py; the Send case is test_pregel.py::test_send_with_untracked_value).

Every stored case runs on each driver and resumes from the store with a freshly compiled graph,
so nothing a run holds in memory can stand in for what was checkpointed."""

from __future__ import annotations

import dataclasses
import itertools
import operator
import threading
from typing import Annotated, Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from hitl_async import Command, InvalidUpdateError, interrupt
from hitl_async.channels import (
    BinaryOperatorAggregate,
    EphemeralValue,
    LastValue,
    Topic,
    UntrackedValue,
)
from hitl_async.channels.binop import BinaryOperatorAggregate as BinopFromSubmodule
from hitl_async.channels.ephemeral_value import EphemeralValue as EphemeralFromSubmodule
from hitl_async.channels.last_value import LastValue as LastValueFromSubmodule
from hitl_async.channels.topic import Topic as TopicFromSubmodule
from hitl_async.channels.untracked_value import UntrackedValue as UntrackedFromSubmodule
from hitl_async.graph import START, StateGraph
from hitl_async.types import Send

pytestmark = pytest.mark.anyio


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _node(seen: list[tuple[str, dict[str, Any]]], name: str, out: dict[str, Any]) -> Any:
    def node(state: dict[str, Any]) -> dict[str, Any]:
        seen.append((name, dict(state)))
        return out

    return node


def _chain(b: StateGraph, names: list[str]) -> None:
    for start, end in itertools.pairwise(names):
        b.add_edge(start, end)


class Flow(TypedDict, total=False):
    flash: Annotated[str, EphemeralValue(str)]
    recent: Annotated[list[str], Topic(str)]
    history: Annotated[list[str], Topic(str, accumulate=True)]
    total: Annotated[int, BinaryOperatorAggregate(int, operator.add)]
    last: Annotated[int, LastValue(int)]


def _flow(seen: list[tuple[str, dict[str, Any]]]) -> StateGraph:
    """write -> relay -> ask (interrupts) -> tail: each step writes some of the keys."""

    def ask(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(("ask", dict(state)))
        return {"last": interrupt("go on?")}

    b = StateGraph(Flow)
    b.add_node(
        "write",
        _node(seen, "write", {"flash": "w", "recent": ["x", "y"], "history": "h1", "total": 1}),
    )
    b.add_node("relay", _node(seen, "relay", {"recent": "z", "history": ["h2", "h3"], "total": 2}))
    b.add_node("ask", ask)
    b.add_node("tail", _node(seen, "tail", {}))
    _chain(b, ["write", "relay", "ask", "tail"])
    b.add_edge(START, "write")
    return b


async def test_each_channel_kind_folds_writes_and_is_restored_from_the_store(saver: Any) -> None:
    """LangGraph: an EphemeralValue is read by the step after the one that wrote it (the input
    counts as written by the start step) and is gone after a step that does not write it; a
    Topic holds the last step's writes, a written list adding its items, and is gone (no key)
    after a step without writes; an accumulating Topic and a BinaryOperatorAggregate (starting
    at int() == 0) add up across steps; all of them are checkpointed as such."""
    seen: list[tuple[str, dict[str, Any]]] = []
    b = _flow(seen)
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"flash": "in", "recent": "r0", "total": 10, "last": 1}, cfg())
    assert seen[0] == ("write", {"flash": "in", "recent": ["r0"], "total": 10, "last": 1})
    assert seen[1] == (
        "relay",
        {"flash": "w", "recent": ["x", "y"], "history": ["h1"], "total": 11, "last": 1},
    )
    paused = {"recent": ["z"], "history": ["h1", "h2", "h3"], "total": 13, "last": 1}
    assert seen[2] == ("ask", paused)
    assert {k: v for k, v in out.items() if k != "__interrupt__"} == paused
    state = await graph.aget_state(cfg())
    assert state.values == paused and state.next == ("ask",)
    by_step = {s.metadata["step"]: s.values async for s in graph.aget_state_history(cfg())}
    assert by_step[-1] == {"total": 0}  # the aggregate's empty value before any write
    assert by_step[0] == {"flash": "in", "recent": ["r0"], "total": 10, "last": 1}
    assert by_step[1]["flash"] == "w" and by_step[1]["recent"] == ["x", "y"]

    seen.clear()
    resumed = b.compile(checkpointer=saver)  # nothing in memory: all from the store
    out = await resumed.ainvoke(Command(resume=7), cfg())
    assert seen[0] == ("ask", paused)  # the paused step's topic value was stored
    done = {"history": ["h1", "h2", "h3"], "total": 13, "last": 7}
    assert seen[1] == ("tail", done)  # the step `ask` ran cleared the topic
    assert out == done
    assert (await resumed.aget_state(cfg())).values == done


async def test_a_new_run_and_update_state_clear_ephemeral_and_topic_keys(saver: Any) -> None:
    """LangGraph: the last node's EphemeralValue and Topic writes are returned and stored, but
    the next run's start step (which does not write them) clears them before the first node
    runs; update_state, with or without as_node, is such a step too."""
    seen: list[tuple[str, dict[str, Any]]] = []

    class S(TypedDict, total=False):
        flash: Annotated[str, EphemeralValue(str)]
        recent: Annotated[list[str], Topic(str)]
        n: int

    b = StateGraph(S)
    b.add_node("first", _node(seen, "first", {}))
    b.add_node("last", _node(seen, "last", {"flash": "bye", "recent": "t"}))
    _chain(b, ["first", "last"])
    b.add_edge(START, "first")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"n": 1}, cfg()) == {"flash": "bye", "recent": ["t"], "n": 1}
    assert (await graph.aget_state(cfg())).values == {"flash": "bye", "recent": ["t"], "n": 1}
    seen.clear()
    await b.compile(checkpointer=saver).ainvoke({"n": 2}, cfg())
    assert seen[0] == ("first", {"n": 2})
    await graph.aupdate_state(cfg(), {"n": 3})
    assert (await graph.aget_state(cfg())).values == {"n": 3}
    await graph.aupdate_state(cfg(), {"flash": "u", "recent": ["u1", "u2"]}, as_node="first")
    state = await graph.aget_state(cfg())
    assert state.values == {"flash": "u", "recent": ["u1", "u2"], "n": 3}
    assert state.next == ("last",)
    await graph.aupdate_state(cfg(), {"n": 4}, as_node="last")
    assert (await graph.aget_state(cfg())).values == {"n": 4}


class Guards(TypedDict, total=False):
    last: Annotated[int, LastValue(int)]
    flash: Annotated[int, EphemeralValue(int)]
    loose_flash: Annotated[int, EphemeralValue(int, guard=False)]
    mem: Annotated[int, UntrackedValue(int)]
    loose_mem: Annotated[int, UntrackedValue(int, guard=False)]
    recent: Annotated[list[int], Topic(int)]


def _two_writers(key: str) -> Any:
    b = StateGraph(Guards)
    b.add_node("p", lambda s: {key: 1})
    b.add_node("q", lambda s: {key: 2})
    b.add_edge(START, "p")
    b.add_edge(START, "q")
    return b.compile()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("last", r"'last'.*only one value per step"),
        ("flash", r"'flash'.*EphemeralValue\(guard=True\)"),
        ("mem", r"'mem'.*UntrackedValue\(guard=True\)"),
    ],
)
async def test_guarded_channels_refuse_two_writes_in_one_step(key: str, message: str) -> None:
    """LangGraph: a LastValue, and an EphemeralValue or UntrackedValue with guard=True, raise
    InvalidUpdateError when two nodes write them in one step."""
    with pytest.raises(InvalidUpdateError, match=message):
        await _two_writers(key).ainvoke({})


@pytest.mark.parametrize(
    ("key", "result"), [("loose_flash", 2), ("loose_mem", 2), ("recent", [1, 2])]
)
async def test_unguarded_channels_and_topics_take_a_steps_several_writes(
    key: str, result: Any
) -> None:
    """LangGraph: with guard=False the write applied last (node q, by name order) is kept; a
    Topic collects both writes in that order."""
    assert await _two_writers(key).ainvoke({}) == {key: result}


class Held:
    """A resource no serializer can store (it holds a lock)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()


async def test_an_untracked_value_lives_in_the_run_but_is_never_stored(saver: Any) -> None:
    """LangGraph: an UntrackedValue is seen by later nodes, streamed and returned by the run
    that wrote it, but get_state() and a run resumed from the store do not have it (the class
    alone as the annotation, `Annotated[Held, UntrackedValue]`, means UntrackedValue(Held))."""
    seen: list[tuple[str, dict[str, Any]]] = []

    class S(TypedDict, total=False):
        res: Annotated[Held, UntrackedValue]
        log: Annotated[list[str], operator.add]

    def ask(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(("ask", dict(state)))
        return {"log": [interrupt("ok?")]}

    b = StateGraph(S)
    b.add_node("open", _node(seen, "open", {"res": Held("r1"), "log": ["open"]}))
    b.add_node("ask", ask)
    b.add_node("tail", _node(seen, "tail", {}))
    _chain(b, ["open", "ask", "tail"])
    b.add_edge(START, "open")
    graph = b.compile(checkpointer=saver)
    chunks = [c async for c in graph.astream({"log": []}, cfg(), stream_mode="values")]
    assert chunks[1]["res"].name == "r1"
    assert seen[1][1]["res"].name == "r1"
    assert (await graph.aget_state(cfg())).values == {"log": ["open"]}
    seen.clear()
    out = await b.compile(checkpointer=saver).ainvoke(Command(resume="yes"), cfg())
    assert seen == [("ask", {"log": ["open"]}), ("tail", {"log": ["open", "yes"]})]
    assert out == {"log": ["open", "yes"]}


async def test_send_args_keep_untracked_values_in_the_run_not_in_the_store(saver: Any) -> None:
    """test_pregel.py::test_send_with_untracked_value: a Send carrying the state hands the
    unstorable UntrackedValue to the pushed task in the same run, and storing the step's
    checkpoint does not fail on it. Here the pushed task pauses first: resumed from the store,
    its stored Send argument has every key but the untracked one."""
    seen: list[tuple[str, dict[str, Any]]] = []

    class S(TypedDict, total=False):
        res: Annotated[Held, UntrackedValue]
        log: Annotated[list[str], operator.add]

    def tool(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(("tool", dict(state)))
        answer = interrupt("use it?")
        return {"log": [f"{state.get('res', Held('none')).name} {answer}"], "res": Held("r2")}

    b = StateGraph(S)
    b.add_node("setup", lambda s: {"log": ["setup"], "res": Held("r1")})
    b.add_node("tool", tool)
    b.add_edge(START, "setup")
    b.add_conditional_edges("setup", lambda s: [Send("tool", s)])
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({}, cfg())
    assert seen[0][1]["res"].name == "r1" and out["res"].name == "r1"
    assert (await graph.aget_state(cfg())).values == {"log": ["setup"]}
    seen.clear()
    out = await b.compile(checkpointer=saver).ainvoke(Command(resume="yes"), cfg())
    assert seen == [("tool", {"log": ["setup"]})]
    assert out["log"] == ["setup", "none yes"] and out["res"].name == "r2"
    assert (await graph.aget_state(cfg())).values == {"log": ["setup", "none yes"]}


@dataclasses.dataclass
class DataState:
    n: int = 0
    seen_by: Annotated[list[str], Topic(str, accumulate=True)] = dataclasses.field(
        default_factory=list
    )
    total: Annotated[int, BinaryOperatorAggregate(int, operator.add)] = 0


class ModelState(BaseModel):
    n: int = 0
    seen_by: Annotated[list[str], Topic(str, accumulate=True)] = []
    total: Annotated[int, BinaryOperatorAggregate(int, operator.add)] = 0
    flash: Annotated[str | None, EphemeralValue(str)] = None


@pytest.mark.parametrize("schema", [DataState, ModelState])
async def test_dataclass_and_pydantic_states_take_channel_annotations(schema: Any) -> None:
    """LangGraph: channel annotations work on dataclass and pydantic states alike; a pydantic
    EphemeralValue key reads its default once cleared."""
    flashes: list[Any] = []

    def a(state: Any) -> dict[str, Any]:
        flashes.append(getattr(state, "flash", None))
        return {"seen_by": ["a"], "total": 2, **({"flash": "e"} if schema is ModelState else {})}

    def b_(state: Any) -> dict[str, Any]:
        flashes.append(getattr(state, "flash", None))
        return {"seen_by": "b", "total": 3}

    def c(state: Any) -> dict[str, Any]:
        flashes.append(getattr(state, "flash", None))
        return {"n": state.total}

    b = StateGraph(schema)
    b.add_sequence([("a", a), ("b", b_), ("c", c)])
    b.add_edge(START, "a")
    out = await b.compile().ainvoke({"total": 1, "seen_by": ["in"]})
    assert out == {"n": 6, "seen_by": ["in", "a", "b"], "total": 6}
    assert flashes == ([None, "e", None] if schema is ModelState else [None, None, None])


def test_the_submodules_hold_the_same_classes() -> None:
    """Ported code imports from langgraph.channels.<module>: the renamed paths resolve to the
    classes of hitl_async.channels."""
    assert (BinopFromSubmodule, EphemeralFromSubmodule, LastValueFromSubmodule) == (
        BinaryOperatorAggregate,
        EphemeralValue,
        LastValue,
    )
    assert (TopicFromSubmodule, UntrackedFromSubmodule) == (Topic, UntrackedValue)


class Short(TypedDict, total=False):
    flash: Annotated[str, EphemeralValue(str)]
    recent: Annotated[list[str], Topic(str)]
    mem: Annotated[str, UntrackedValue(str)]
    log: Annotated[list[str], operator.add]


async def test_a_conditional_edge_reads_the_state_as_its_step_leaves_it() -> None:
    """LangGraph: a path function reads the state with its node's writes applied as at the end
    of the step, so an EphemeralValue or Topic the node did not write is already gone there,
    while an UntrackedValue stays."""
    read: list[dict[str, Any]] = []
    b = StateGraph(Short)
    b.add_node("a", lambda s: {"flash": "e", "recent": "t", "mem": "m"})
    b.add_node("b", lambda s: {"log": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_conditional_edges("b", lambda s: read.append(dict(s)) or "__end__")
    assert await b.compile().ainvoke({}) == {"mem": "m", "log": ["b"]}
    assert read == [{"log": ["b"], "mem": "m"}]


async def test_a_paused_steps_untracked_writes_are_not_kept_for_the_resume(saver: Any) -> None:
    """LangGraph: the writes a finished sibling of a paused task leaves pending omit its
    UntrackedValue write, so the step finished on resume from the store lacks it; a
    Command(update=...) given with the answer reaches the resumed run but is not stored."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def ask(state: dict[str, Any]) -> dict[str, Any]:
        return {"log": [interrupt("?")]}

    b = StateGraph(Short)
    b.add_node("done", lambda s: {"mem": "from-done", "log": ["done"]})
    b.add_node("ask", ask)
    b.add_node("join", _node(seen, "join", {}))
    b.add_edge(START, "done")
    b.add_edge(START, "ask")
    b.add_edge(["done", "ask"], "join")
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({}, cfg())
    assert out["mem"] == "from-done" and out["log"] == ["done"]
    assert (await graph.aget_state(cfg())).values == {"log": ["done"]}
    resumed = b.compile(checkpointer=saver)
    out = await resumed.ainvoke(Command(resume="yes"), cfg())
    assert seen == [("join", {"log": ["yes", "done"]})]  # (applied by node name)
    assert out == {"log": ["yes", "done"]}

    seen.clear()
    b2 = StateGraph(Short)
    b2.add_node("ask", ask)
    b2.add_node("tail", _node(seen, "tail", {}))
    b2.add_edge(START, "ask")
    b2.add_edge("ask", "tail")
    graph = b2.compile(checkpointer=saver)
    await graph.ainvoke({}, cfg("2"))
    out = await b2.compile(checkpointer=saver).ainvoke(
        Command(resume="r", update={"mem": "given", "recent": ["u"]}), cfg("2")
    )
    assert seen == [("tail", {"mem": "given", "log": ["r"]})]
    assert out == {"mem": "given", "log": ["r"]}
    assert (await graph.aget_state(cfg("2"))).values == {"log": ["r"]}


async def test_an_unstorable_untracked_value_in_the_input_is_left_out_of_the_store(
    saver: Any,
) -> None:
    """A difference (README): LangGraph stores the run's input whole in its input checkpoint,
    so an UntrackedValue in it that cannot be serialized fails the run with TypeError; here the
    stored input leaves it out like any Send argument, so the run goes on with it in memory."""
    seen: list[tuple[str, dict[str, Any]]] = []

    class S(TypedDict, total=False):
        res: Annotated[Held, UntrackedValue]
        log: Annotated[list[str], operator.add]

    def ask(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(("ask", dict(state)))
        return {"log": [interrupt("?")]}

    b = StateGraph(S)
    b.add_node("ask", ask)
    b.add_edge(START, "ask")
    held = Held("given")
    out = await b.compile(checkpointer=saver).ainvoke({"res": held, "log": ["in"]}, cfg())
    assert out["res"] is held and seen[0][1]["res"] is held
    seen.clear()
    out = await b.compile(checkpointer=saver).ainvoke(Command(resume="r"), cfg())
    assert seen == [("ask", {"log": ["in"]})]
    assert out == {"log": ["in", "r"]}


async def test_history_task_results_leave_untracked_writes_out(saver: Any) -> None:
    """LangGraph: history shows each task's writes as its result, but not its UntrackedValue
    writes (they are never stored), for a step of one task and of several alike; a topic's
    result is what was written, not the list it became."""
    b = StateGraph(Short)
    b.add_node("one", lambda s: {"mem": "m1", "flash": "e1", "recent": ["a", "b"]})
    b.add_node("p", lambda s: {"mem": "m2", "recent": "p"})
    b.add_node("q", lambda s: {"log": ["q"], "recent": ["q"]})
    b.add_edge(START, "one")
    b.add_edge("one", "p")
    b.add_edge("one", "q")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({}, cfg()) == {"recent": ["p", "q"], "mem": "m2", "log": ["q"]}
    history = [s async for s in b.compile(checkpointer=saver).aget_state_history(cfg())]
    results = {s.metadata["step"]: [(t.name, t.result) for t in s.tasks] for s in history}
    assert results[0] == [("one", {"flash": "e1", "recent": ["a", "b"]})]
    assert results[1] == [("p", {"recent": "p"}), ("q", {"log": ["q"], "recent": ["q"]})]
    assert history[0].values == {"recent": ["p", "q"], "log": ["q"]}


async def test_a_subgraph_keeps_its_channels_and_hands_its_state_back(saver: Any) -> None:
    """LangGraph: a subgraph node with channel keys folds them in its own steps (its paused
    state is stored without the untracked key); when it ends, its whole state is the node's
    write to the parent, so an accumulating Topic the parent passed in comes back appended
    again to the parent's."""
    seen: list[tuple[str, dict[str, Any]]] = []

    class Sub(TypedDict, total=False):
        flash: Annotated[str, EphemeralValue(str)]
        history: Annotated[list[str], Topic(str, accumulate=True)]
        mem: Annotated[str, UntrackedValue(str)]
        log: Annotated[list[str], operator.add]

    def s2(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(("s2", dict(state)))
        return {"log": [interrupt("?")], "history": "s2"}

    sb = StateGraph(Sub)
    sb.add_node("s1", lambda s: {"flash": "sub", "history": ["s1"], "mem": "m"})
    sb.add_node("s2", s2)
    sb.add_edge(START, "s1")
    sb.add_edge("s1", "s2")
    pb = StateGraph(Sub)
    pb.add_node("sub", sb.compile())
    pb.add_node("after", _node(seen, "after", {}))
    pb.add_edge(START, "sub")
    pb.add_edge("sub", "after")
    await pb.compile(checkpointer=saver).ainvoke({"flash": "top", "history": ["p"]}, cfg())
    assert seen == [("s2", {"flash": "sub", "history": ["p", "s1"], "mem": "m", "log": []})]
    state = await pb.compile(checkpointer=saver).aget_state(cfg(), subgraphs=True)
    assert state.values == {"flash": "top", "history": ["p"], "log": []}
    assert state.tasks[0].state.values == {"flash": "sub", "history": ["p", "s1"], "log": []}
    seen.clear()
    out = await pb.compile(checkpointer=saver).ainvoke(Command(resume="r"), cfg())
    assert seen[0] == ("s2", {"flash": "sub", "history": ["p", "s1"], "log": []})
    assert seen[1] == ("after", {"history": ["p", "p", "s1", "s2"], "log": ["r"]})
    assert out == {"history": ["p", "p", "s1", "s2"], "log": ["r"]}


async def test_a_step_that_only_clears_keys_streams_no_values(saver: Any) -> None:
    """LangGraph: a `values` chunk follows a step whose tasks wrote a state key (the empty
    input writes none, so it has none either); a step that
    writes nothing but clears an EphemeralValue and a Topic changes the stored state (history
    shows it) yet streams no chunk, and its task's result in history is empty."""
    b = StateGraph(Short)
    b.add_node("a", lambda s: {"flash": "e", "recent": "t"})
    b.add_node("b", lambda s: {})
    b.add_node("c", lambda s: {"log": ["c"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_edge("b", "c")
    graph = b.compile(checkpointer=saver)
    chunks = [c async for c in graph.astream({}, cfg(), stream_mode="values")]
    assert chunks == [{"flash": "e", "recent": ["t"], "log": []}, {"log": ["c"]}]
    history = [s async for s in b.compile(checkpointer=saver).aget_state_history(cfg())]
    by_step = {s.metadata["step"]: s for s in history}
    assert by_step[2].values == {"log": []}
    assert [(t.name, t.result) for t in by_step[1].tasks] == [("b", {})]


async def test_a_root_state_may_be_a_channel(saver: Any) -> None:
    """A difference (README): LangGraph 1.2.22 fails to build `StateGraph(Annotated[list,
    Topic(str)])` (its channel objects cannot be hashed); here a one-value state annotated with
    a channel class folds its writes as that channel does."""
    seen: list[Any] = []
    b = StateGraph(Annotated[list[str], Topic(str, accumulate=True)])
    b.add_node("a", lambda s: seen.append(list(s)) or "a")
    b.add_node("b", lambda s: seen.append(list(s)) or ["b", "c"])
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke("in", cfg()) == ["in", "a", "b", "c"]
    assert seen == [["in"], ["in", "a"]]
    assert (await b.compile(checkpointer=saver).aget_state(cfg())).values == ["in", "a", "b", "c"]
