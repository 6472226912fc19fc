"""Human in the loop, restated from LangGraph's interrupt tests and run on every driver.

Where LangGraph's test asserts something hitl-async deliberately does differently (README,
"Porting from LangGraph": strict resume errors, no interrupt without a checkpointer, partial
resume), the case is kept and asserts our documented behaviour."""

from __future__ import annotations

import operator
import uuid
from collections import Counter
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import (
    AmbiguousResumeError,
    CheckpointerRequiredError,
    Command,
    Interrupt,
    InvalidConfigError,
    NoPendingInterruptError,
    Send,
    UnknownInterruptError,
    interrupt,
)
from hitl_async.graph import END, START, StateGraph

pytestmark = pytest.mark.anyio


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def cfg(thread: Any = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


async def collect(graph: Any, value: Any, config: Any, **kw: Any) -> list[Any]:
    return [c async for c in graph.astream(value, config, **kw)]


def values_of(interrupts: Any) -> list[Any]:
    return [i.value for i in interrupts]


def parallel_askers(saver: Any, calls: Counter[str], *, sibling: bool = True) -> Any:
    """`ask1` and `ask2` pause from START; `other` (optional) just logs."""

    def asker(name: str) -> Any:
        def fn(state: Log) -> dict[str, Any]:
            calls[name] += 1
            return {"log": [f"{name}:{interrupt(f'{name}?')}"]}

        return fn

    b = StateGraph(Log)
    b.add_node("ask1", asker("ask1"))
    b.add_node("ask2", asker("ask2"))
    b.add_edge(START, "ask1")
    b.add_edge(START, "ask2")
    if sibling:

        def other(state: Log) -> dict[str, Any]:
            calls["other"] += 1
            return {"log": ["other"]}

        b.add_node("other", other)
        b.add_edge(START, "other")
    return b.compile(checkpointer=saver)


# test_pregel_async.py::test_dynamic_interrupt
async def test_interrupt_pauses_then_resume_answer_becomes_the_nodes_write(saver: Any) -> None:
    class S(TypedDict):
        my_key: Annotated[str, operator.add]
        market: str

    runs = Counter[str]()

    async def tool_two(s: S) -> dict[str, Any]:
        runs["n"] += 1
        answer = interrupt("Just because...") if s["market"] == "DE" else " all good"
        return {"my_key": answer}

    b = StateGraph(S)
    b.add_node("tool_two", tool_two)
    b.add_edge(START, "tool_two")
    graph = b.compile(checkpointer=saver)
    out = await collect(graph, {"my_key": "value ⛰️", "market": "DE"}, cfg("2"))
    assert len(out) == 1 and values_of(out[0]["__interrupt__"]) == ["Just because..."]
    assert await collect(graph, Command(resume=" my answer"), cfg("2")) == [
        {"tool_two": {"my_key": " my answer"}}
    ]
    assert (await graph.aget_state(cfg("2"))).values == {
        "my_key": "value ⛰️ my answer",
        "market": "DE",
    }
    assert await graph.ainvoke({"my_key": "v", "market": "US"}, cfg("3")) == {
        "my_key": "v all good",
        "market": "US",
    }


# test_pregel_async.py::test_dynamic_interrupt (the paused snapshot)
async def test_paused_snapshot_shows_the_task_with_its_interrupt(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("tool", lambda s: {"log": [interrupt("why?")]})
    b.add_edge(START, "tool")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": ["x"]}, cfg())
    snap = await graph.aget_state(cfg())
    assert snap.values == {"log": ["x"]}
    assert snap.next == ("tool",)
    assert [(t.name, t.path, values_of(t.interrupts)) for t in snap.tasks] == [
        ("tool", ("__pregel_pull", "tool"), ["why?"])
    ]
    assert snap.interrupts == snap.tasks[0].interrupts
    assert snap.metadata["source"] == "loop" and snap.metadata["step"] == 0


# test_pregel_async.py::test_dynamic_interrupt (durability="exit")
async def test_interrupt_with_durability_exit_stores_only_the_last_checkpoint(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("tool", lambda s: {"log": [interrupt("why?")]})
    b.add_edge(START, "tool")
    graph = b.compile(checkpointer=saver)
    out = await collect(graph, {"log": ["x"]}, cfg(), durability="exit")
    assert values_of(out[0]["__interrupt__"]) == ["why?"]
    history = [s async for s in graph.aget_state_history(cfg())]
    assert [(s.metadata["source"], s.next) for s in history] == [("loop", ("tool",))]
    assert await graph.ainvoke(Command(resume="ok"), cfg(), durability="exit") == {
        "log": ["x", "ok"]
    }


# test_pregel_async.py::test_dynamic_interrupt (no checkpointer) — deliberate difference
async def test_interrupt_without_a_checkpointer_is_refused(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("tool", lambda s: {"log": [interrupt("why?")]})
    b.add_edge(START, "tool")
    with pytest.raises(CheckpointerRequiredError, match="checkpointer"):
        await b.compile().ainvoke({"log": []})
    # a graph without interrupts runs without one, as in LangGraph
    c = StateGraph(Log)
    c.add_node("n", lambda s: {"log": ["n"]})
    c.add_edge(START, "n")
    assert await c.compile().ainvoke({"log": []}) == {"log": ["n"]}


# test_pregel_async.py::test_dynamic_interrupt (missing thread_id)
async def test_missing_thread_id_is_a_value_error_naming_it(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("n", lambda s: {"log": ["n"]})
    b.add_edge(START, "n")
    graph = b.compile(checkpointer=saver)
    with pytest.raises(ValueError, match="thread_id"):
        await graph.ainvoke({"log": []})
    with pytest.raises(InvalidConfigError, match="thread_id"):
        await graph.ainvoke({"log": []}, {"configurable": {}})


# test_pregel_async.py::test_interrupt_multiple
async def test_two_interrupts_in_one_node_with_an_update_on_the_first_resume(saver: Any) -> None:
    class S(TypedDict):
        my_key: Annotated[str, operator.add]

    async def node(s: S) -> dict[str, Any]:
        one = interrupt({"value": 1})
        two = interrupt({"value": 2})
        return {"my_key": one + " " + two}

    b = StateGraph(S)
    b.add_node("node", node)
    b.add_edge(START, "node")
    graph = b.compile(checkpointer=saver)
    first = await collect(graph, {"my_key": "DE"}, cfg())
    assert [values_of(c["__interrupt__"]) for c in first] == [[{"value": 1}]]
    second = await collect(graph, Command(resume="answer 1", update={"my_key": "foofoo"}), cfg())
    assert [values_of(c["__interrupt__"]) for c in second] == [[{"value": 2}]]
    assert await collect(graph, Command(resume="answer 2"), cfg()) == [
        {"node": {"my_key": "answer 1 answer 2"}}
    ]
    assert (await graph.aget_state(cfg())).values == {"my_key": "DEfoofooanswer 1 answer 2"}


# test_pregel_async.py::test_interrupt_loop
async def test_interrupt_in_a_loop_asks_until_the_answer_is_valid(saver: Any) -> None:
    class S(TypedDict, total=False):
        age: int
        other: str

    async def ask_age(s: S) -> dict[str, Any]:
        question = "How old are you?"
        for _ in range(10):
            value = interrupt(question)
            if value.isdigit() and int(value) >= 18:
                return {"age": int(value)}
            question = "invalid response"
        raise AssertionError("unreachable")

    b = StateGraph(S)
    b.add_node("node", ask_age)
    b.add_edge(START, "node")
    graph = b.compile(checkpointer=saver)
    first = await collect(graph, {"other": ""}, cfg())
    assert values_of(first[0]["__interrupt__"]) == ["How old are you?"]
    for answer in ("13", "15"):
        out = await collect(graph, Command(resume=answer), cfg())
        assert [values_of(c["__interrupt__"]) for c in out] == [["invalid response"]]
    assert await collect(graph, Command(resume="19"), cfg()) == [{"node": {"age": 19}}]


# test_pregel_async.py::test_command_with_static_breakpoints
async def test_command_update_at_a_breakpoint_continues_with_the_update(saver: Any) -> None:
    class S(TypedDict):
        foo: str

    b = StateGraph(S)
    b.add_node("node1", lambda s: {"foo": s["foo"] + "|node-1"})
    b.add_node("node2", lambda s: {"foo": s["foo"] + "|node-2"})
    b.add_edge(START, "node1")
    b.add_edge("node1", "node2")
    graph = b.compile(checkpointer=saver, interrupt_before=["node1"])
    config = cfg(str(uuid.uuid4()))
    await graph.ainvoke({"foo": "abc"}, config)
    assert await graph.ainvoke(Command(update={"foo": "def"}), config) == {
        "foo": "def|node-1|node-2"
    }


# test_pregel_async.py::test_command_goto_with_static_breakpoints
async def test_command_goto_at_a_breakpoint_adds_a_branch(saver: Any) -> None:
    class S(TypedDict):
        foo: Annotated[str, operator.add]

    b = StateGraph(S)
    b.add_node("node1", lambda s: {"foo": "|node-1"})
    b.add_node("node2", lambda s: {"foo": "|node-2"})
    b.add_edge(START, "node1")
    b.add_edge("node1", "node2")
    graph = b.compile(checkpointer=saver, interrupt_before=["node1"])
    await graph.ainvoke({"foo": "abc"}, cfg())
    assert await graph.ainvoke(Command(goto=["node2"]), cfg()) == {
        "foo": "abc|node-1|node-2|node-2"
    }


# test_pregel_async.py::test_multiple_interrupt_state_persistence
async def test_state_is_unchanged_until_the_interrupting_node_returns(saver: Any) -> None:
    class S(TypedDict):
        steps: Annotated[list[str], operator.add]

    def node(state: S) -> dict[str, Any]:
        return {"steps": [interrupt("First interrupt"), interrupt("Second interrupt")]}

    b = StateGraph(S)
    b.add_node("node", node)
    b.add_edge(START, "node")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"steps": []}, cfg())
    assert (await graph.aget_state(cfg())).values == {"steps": []}
    await graph.ainvoke(Command(resume="step1"), cfg())
    assert (await graph.aget_state(cfg())).values == {"steps": []}
    assert (await graph.ainvoke(Command(resume="step2"), cfg()))["steps"] == ["step1", "step2"]
    assert (await graph.aget_state(cfg())).values == {"steps": ["step1", "step2"]}


# test_pregel_async.py::test_node_before_interrupt_resume_graph_api
async def test_a_node_before_the_asking_node_does_not_shift_answers(saver: Any) -> None:
    class S(TypedDict):
        topics: list[str]
        answers: Annotated[list[str], operator.add]

    def setup(state: S) -> dict[str, Any]:
        return {"topics": [f"topic {i + 1}" for i in range(len(state["topics"]))]}

    def ask(state: S) -> dict[str, Any]:
        return {"answers": [interrupt(f"answer for {t}?") for t in state["topics"]]}

    b = StateGraph(S)
    b.add_node("setup", setup)
    b.add_node("ask", ask)
    b.add_edge(START, "setup")
    b.add_edge("setup", "ask")
    b.add_edge("ask", END)
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"topics": ["a", "b"], "answers": []}, cfg())
    assert values_of(out["__interrupt__"]) == ["answer for topic 1?"]
    out = await graph.ainvoke(Command(resume="answer1"), cfg())
    assert values_of(out["__interrupt__"]) == ["answer for topic 2?"]
    assert await graph.ainvoke(Command(resume="answer2"), cfg()) == {
        "topics": ["topic 1", "topic 2"],
        "answers": ["answer1", "answer2"],
    }


# test_pregel_async.py::test_multiple_nodes_before_interrupt_resume_graph_api
async def test_the_question_sees_the_state_of_the_steps_before(saver: Any) -> None:
    class S(TypedDict):
        value: int
        answer: str

    b = StateGraph(S)
    b.add_node("step_a", lambda s: {"value": s["value"] + 1})
    b.add_node("step_b", lambda s: {"value": s["value"] * 2})
    b.add_node("ask", lambda s: {"answer": interrupt(f"so far {s['value']}; next?")})
    b.add_edge(START, "step_a")
    b.add_edge("step_a", "step_b")
    b.add_edge("step_b", "ask")
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"value": 5, "answer": ""}, cfg())
    assert values_of(out["__interrupt__"]) == ["so far 12; next?"]
    assert out["value"] == 12
    assert await graph.ainvoke(Command(resume="go"), cfg()) == {"value": 12, "answer": "go"}


# test_pregel_async.py::test_node_before_multiple_interrupt_cycles_graph_api
async def test_two_cycles_of_asking_after_a_preparing_node(saver: Any) -> None:
    class S(TypedDict):
        count: int
        data: str

    def multi(state: S) -> dict[str, Any]:
        return {"data": f"{interrupt('First?')},{interrupt('Second?')}"}

    b = StateGraph(S)
    b.add_node("prepare", lambda s: {"count": s["count"] + 10})
    b.add_node("multi", multi)
    b.add_edge(START, "prepare")
    b.add_edge("prepare", "multi")
    graph = b.compile(checkpointer=saver)
    assert values_of((await graph.ainvoke({"count": 0, "data": ""}, cfg()))["__interrupt__"]) == [
        "First?"
    ]
    assert values_of((await graph.ainvoke(Command(resume="f"), cfg()))["__interrupt__"]) == [
        "Second?"
    ]
    assert await graph.ainvoke(Command(resume="s"), cfg()) == {"count": 10, "data": "f,s"}


# test_pregel_async.py::test_null_resume_disallowed_with_multiple_interrupts
async def test_scalar_resume_with_two_pending_is_refused_and_a_map_answers_both(
    saver: Any,
) -> None:
    class S(TypedDict):
        text_1: str
        text_2: str

    b = StateGraph(S)
    b.add_node("human_1", lambda s: {"text_1": interrupt(s["text_1"])})
    b.add_node("human_2", lambda s: {"text_2": interrupt(s["text_2"])})
    b.add_edge(START, "human_1")
    b.add_edge(START, "human_2")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"text_1": "t1", "text_2": "t2"}, cfg())
    pending = (await graph.aget_state(cfg())).interrupts
    # LangGraph raises RuntimeError; ours is a RuntimeError too (and a ValueError)
    with pytest.raises(RuntimeError, match="you must specify the interrupt id when") as err:
        await graph.ainvoke(Command(resume="singular"), cfg())
    assert isinstance(err.value, AmbiguousResumeError) and isinstance(err.value, ValueError)
    answers = {i.id: f"re: {i.value}" for i in pending}
    assert await graph.ainvoke(Command(resume=answers), cfg()) == {
        "text_1": "re: t1",
        "text_2": "re: t2",
    }


# test_pregel_async.py::test_interrupt_stream_mode_values
async def test_interrupt_shows_in_the_values_stream_with_the_state(saver: Any) -> None:
    class S(TypedDict, total=False):
        robot_input: str
        human_input: str

    def robot(state: S) -> dict[str, Any]:
        return {"robot_input": "beep"}

    def human(state: S) -> Command[Any]:
        return Command(update={"human_input": interrupt("interrupt")})

    b = StateGraph(S)
    b.add_node("robot", robot)
    b.add_node("human", human)
    b.add_edge(START, "robot")
    b.add_edge("robot", "human")
    graph = b.compile(checkpointer=saver)
    out = await collect(graph, {}, cfg(), stream_mode=["updates", "values"])
    assert len(out) == 4
    assert out[:2] == [("updates", {"robot": {"robot_input": "beep"}}), ("values", out[1][1])]
    assert out[1][1] == {"robot_input": "beep"}
    assert out[2][0] == "updates" and values_of(out[2][1]["__interrupt__"]) == ["interrupt"]
    asked = out[2][1]["__interrupt__"]
    assert out[3] == ("values", {"robot_input": "beep", "__interrupt__": asked})
    modes = ["updates", "values"]
    resumed = await collect(graph, Command(resume="human"), cfg(), stream_mode=modes)
    assert resumed == [
        ("values", {"robot_input": "beep"}),
        ("updates", {"human": {"human_input": "human"}}),
        ("values", {"robot_input": "beep", "human_input": "human"}),
    ]


# test_interruption.py::test_interruption_without_state_updates
@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_interrupt_after_every_node_that_writes_nothing(saver: Any, durability: str) -> None:
    class S(TypedDict):
        input: str

    def noop(state: S) -> None:
        return None

    b = StateGraph(S)
    for n in ("step_1", "step_2", "step_3"):
        b.add_node(n, noop)
    b.add_edge(START, "step_1")
    b.add_edge("step_1", "step_2")
    b.add_edge("step_2", "step_3")
    b.add_edge("step_3", END)
    graph = b.compile(checkpointer=saver, interrupt_after="*")
    expected = [("step_2",), ("step_3",), ()]
    counts = [3, 4, 5] if durability != "exit" else [1, 2, 3]
    for i, inp in enumerate([{"input": "hello world"}, None, None]):
        await graph.ainvoke(inp, cfg(), durability=durability)
        assert (await graph.aget_state(cfg())).next == expected[i]
        assert len([s async for s in graph.aget_state_history(cfg())]) == counts[i]


# issue #14: parallel tasks that pause report one __interrupt__ each (LangGraph's updates)
async def test_parallel_pauses_are_one_interrupt_event_per_task(saver: Any) -> None:
    graph = parallel_askers(saver, Counter())
    out = await collect(graph, {"log": []}, cfg())
    interrupts = [c["__interrupt__"] for c in out if "__interrupt__" in c]
    assert sorted(values_of(i) for i in interrupts) == [["ask1?"], ["ask2?"]]
    assert {"other": {"log": ["other"]}} in out
    assert len(out) == 3


# issue #14: on resume finished siblings' updates come again, marked cached
async def test_resume_reemits_finished_siblings_marked_cached(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = parallel_askers(saver, calls)
    await graph.ainvoke({"log": []}, cfg())
    ids = {i.value: i.id for i in (await graph.aget_state(cfg())).interrupts}
    first = await collect(graph, Command(resume={ids["ask1?"]: "A"}), cfg())
    assert first[0] == {"other": {"log": ["other"]}, "__metadata__": {"cached": True}}
    assert {"ask1": {"log": ["ask1:A"]}} in first
    assert [values_of(c["__interrupt__"]) for c in first if "__interrupt__" in c] == [["ask2?"]]
    second = await collect(graph, Command(resume={ids["ask2?"]: "B"}), cfg())
    assert second == [
        {"ask1": {"log": ["ask1:A"]}, "__metadata__": {"cached": True}},
        {"other": {"log": ["other"]}, "__metadata__": {"cached": True}},
        {"ask2": {"log": ["ask2:B"]}},
    ]
    assert calls["other"] == 1 and calls["ask1"] == 2
    # partial resume reran only the answered task (README: deliberate difference)
    assert calls["ask2"] == 2
    assert (await graph.aget_state(cfg())).values == {"log": ["ask1:A", "ask2:B", "other"]}


# issue #14: invoke at a pause includes the writes of siblings that finished in the step
async def test_invoke_at_a_pause_returns_finished_siblings_writes(saver: Any) -> None:
    graph = parallel_askers(saver, Counter())
    out = await graph.ainvoke({"log": ["in"]}, cfg())
    assert out["log"] == ["in", "other"]
    assert sorted(values_of(out["__interrupt__"])) == ["ask1?", "ask2?"]
    assert isinstance(out["__interrupt__"], list)
    snap = await graph.aget_state(cfg())
    assert snap.values == {"log": ["in", "other"]}
    assert snap.next == ("ask1", "ask2")
    assert [t.name for t in snap.tasks] == ["ask1", "ask2", "other"]  # graph order


# issue #14: Command(resume=...) at a breakpoint continues the run
@pytest.mark.parametrize("where", ["before", "after"])
async def test_resume_at_a_breakpoint_continues_the_run(saver: Any, where: str) -> None:
    b = StateGraph(Log)
    b.add_node("a", lambda s: {"log": ["a"]})
    b.add_node("b", lambda s: {"log": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    kw = {"interrupt_before": ["b"]} if where == "before" else {"interrupt_after": ["a"]}
    graph = b.compile(checkpointer=saver, **kw)
    assert await graph.ainvoke({"log": []}, cfg()) == {"log": ["a"]}
    assert await collect(graph, Command(resume="go"), cfg()) == [{"b": {"log": ["b"]}}]
    assert (await graph.aget_state(cfg())).values == {"log": ["a", "b"]}


# issue #14 — deliberate difference: answers naming an interrupt that is not pending
async def test_resume_by_unknown_id_at_a_breakpoint_is_refused_and_changes_nothing(
    saver: Any,
) -> None:
    b = StateGraph(Log)
    b.add_node("a", lambda s: {"log": ["a"]})
    b.add_node("b", lambda s: {"log": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    graph = b.compile(checkpointer=saver, interrupt_before=["b"])
    await graph.ainvoke({"log": []}, cfg())
    before = await graph.aget_state(cfg())
    bogus = uuid.uuid4().hex
    with pytest.raises(UnknownInterruptError, match=bogus):
        await graph.ainvoke(Command(resume={bogus: 1}), cfg())
    assert await graph.aget_state(cfg()) == before


# test_pregel_async.py::test_interrupt_multiple — deliberate difference: resume on a done thread
async def test_resume_of_a_finished_thread_is_refused(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("a", lambda s: {"log": ["a"]})
    b.add_edge(START, "a")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg())
    with pytest.raises(NoPendingInterruptError, match="finished"):
        await graph.ainvoke(Command(resume="late"), cfg())
    with pytest.raises(NoPendingInterruptError, match="does not exist"):
        await graph.ainvoke(Command(resume="x"), cfg("never-started"))


# test_pregel_async.py::test_partial_pending_checkpoint — deliberate difference: partial resume
async def test_partial_resume_reruns_only_the_answered_task(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = parallel_askers(saver, calls, sibling=False)
    await graph.ainvoke({"log": []}, cfg())
    pending = {i.value: i.id for i in (await graph.aget_state(cfg())).interrupts}
    out = await graph.ainvoke(Command(resume={pending["ask1?"]: "one"}), cfg())
    assert out["log"] == ["ask1:one"]
    assert values_of(out["__interrupt__"]) == ["ask2?"]
    assert calls == {"ask1": 2, "ask2": 1}
    snap = await graph.aget_state(cfg())
    assert [i.id for i in snap.interrupts] == [pending["ask2?"]]  # same id still pending
    await graph.ainvoke(Command(resume={pending["ask2?"]: "two"}), cfg())
    assert (await graph.aget_state(cfg())).values == {"log": ["ask1:one", "ask2:two"]}


# test_pregel_async.py::test_send_react_interrupt
async def test_interrupt_in_a_send_task_resumes_with_its_argument(saver: Any) -> None:
    class S(TypedDict, total=False):
        log: Annotated[list[str], operator.add]

    def fan(state: S) -> list[Send]:
        return [Send("tool", {"arg": "x"}), Send("tool", {"arg": "y"})]

    def tool(arg: dict[str, str]) -> dict[str, Any]:
        return {"log": [f"{arg['arg']}={interrupt(arg['arg'])}"]}

    b = StateGraph(S)
    b.add_node("start", lambda s: {"log": ["start"]})
    b.add_node("tool", tool)
    b.add_edge(START, "start")
    b.add_conditional_edges("start", fan, ["tool"])
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"log": []}, cfg())
    assert sorted(values_of(out["__interrupt__"])) == ["x", "y"]
    snap = await graph.aget_state(cfg())
    assert [t.path[0] for t in snap.tasks] == ["__pregel_push", "__pregel_push"]
    answers = {i.id: i.value.upper() for i in snap.interrupts}
    assert await graph.ainvoke(Command(resume=answers), cfg()) == {"log": ["start", "x=X", "y=Y"]}


# test_pregel_async.py::test_node_not_cancelled_on_other_node_interrupted
async def test_a_sibling_keeps_running_when_another_task_pauses(saver: Any) -> None:
    import anyio

    done: list[str] = []

    async def slow(state: Log) -> dict[str, Any]:
        await anyio.sleep(0.05)
        done.append("slow")
        return {"log": ["slow"]}

    b = StateGraph(Log)
    b.add_node("ask", lambda s: {"log": [interrupt("q")]})
    b.add_node("slow", slow)
    b.add_edge(START, "ask")
    b.add_edge(START, "slow")
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"log": []}, cfg())
    assert done == ["slow"] and out["log"] == ["slow"]
    assert await graph.ainvoke(Command(resume="a"), cfg()) == {"log": ["a", "slow"]}
    assert done == ["slow"]


# test_pregel_async.py::test_pending_writes_resume
async def test_failed_step_keeps_the_finished_sibling_and_reruns_only_the_failed(
    saver: Any,
) -> None:
    class S(TypedDict):
        value: Annotated[int, operator.add]

    calls: Counter[str] = Counter()
    broken = {"on": True}

    async def one(state: S) -> dict[str, Any]:
        calls["one"] += 1
        return {"value": 2}

    async def two(state: S) -> dict[str, Any]:
        calls["two"] += 1
        if broken["on"]:
            raise ConnectionError("I'm not good")
        return {"value": 3}

    b = StateGraph(S)
    b.add_node("one", one)
    b.add_node("two", two)
    b.add_edge(START, "one")
    b.add_edge(START, "two")
    graph = b.compile(checkpointer=saver)
    with pytest.raises(ConnectionError, match="I'm not good"):
        await graph.ainvoke({"value": 1}, cfg())
    snap = await graph.aget_state(cfg())
    assert snap.values == {"value": 3}
    assert snap.next == ("two",)
    by_name = {t.name: t for t in snap.tasks}
    assert by_name["one"].result == {"value": 2} and by_name["one"].error is None
    assert "I'm not good" in (by_name["two"].error or "")
    broken["on"] = False
    assert await graph.ainvoke(None, cfg()) == {"value": 6}
    assert calls == {"one": 1, "two": 2}


# test_pregel_async.py::test_checkpoint_recovery_async
async def test_resuming_after_a_failure_continues_from_the_last_checkpoint(saver: Any) -> None:
    class S(TypedDict):
        steps: Annotated[list[str], operator.add]
        attempt: int

    async def first(state: S) -> dict[str, Any]:
        return {"steps": ["one"]}

    async def second(state: S) -> dict[str, Any]:
        if state["attempt"] == 1:
            raise RuntimeError("Simulated failure")
        return {"steps": ["two"]}

    b = StateGraph(S)
    b.add_node("first", first)
    b.add_node("second", second)
    b.add_edge(START, "first")
    b.add_edge("first", "second")
    graph = b.compile(checkpointer=saver)
    with pytest.raises(RuntimeError, match="Simulated failure"):
        await graph.ainvoke({"steps": ["start"], "attempt": 1}, cfg())
    snap = await graph.aget_state(cfg())
    assert snap.values == {"steps": ["start", "one"], "attempt": 1}
    assert snap.next == ("second",)
    with pytest.raises(RuntimeError, match="Simulated failure"):  # same input, same failure
        await graph.ainvoke(None, cfg())
    await graph.aupdate_state(cfg(), {"attempt": 2})
    assert (await graph.ainvoke(None, cfg()))["steps"] == ["start", "one", "two"]


# test_pregel_async.py::test_interrupt_subgraph (interrupt ids)
async def test_interrupt_ids_are_32_hex_and_stable_until_answered(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("ask", lambda s: {"log": [interrupt("q")]})
    b.add_edge(START, "ask")
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"log": []}, cfg())
    (intr,) = out["__interrupt__"]
    assert isinstance(intr, Interrupt) and len(intr.id) == 32 and int(intr.id, 16) >= 0
    assert [i.id for i in (await graph.aget_state(cfg())).interrupts] == [intr.id]
    assert [i.id for i in (await graph.aget_state(cfg())).interrupts] == [intr.id]
    assert await graph.ainvoke(Command(resume={intr.id: "by id"}), cfg()) == {"log": ["by id"]}


# issue #14: thread_id given as a UUID or an int (LangGraph's docs do this)
@pytest.mark.parametrize("thread", [uuid.UUID(int=7), 42])
async def test_uuid_and_int_thread_ids_work_and_are_stored_as_str(saver: Any, thread: Any) -> None:
    b = StateGraph(Log)
    b.add_node("ask", lambda s: {"log": [interrupt("q")]})
    b.add_edge(START, "ask")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg(thread))
    snap = await graph.aget_state(cfg(thread))
    assert snap.config["configurable"]["thread_id"] == str(thread)
    assert (await graph.aget_state(cfg(str(thread)))).values == snap.values
    history = [s async for s in graph.aget_state_history(cfg(thread))]
    assert {s.config["configurable"]["thread_id"] for s in history} == {str(thread)}
    await graph.aupdate_state(cfg(thread), {"log": ["edit"]})
    assert await graph.ainvoke(Command(resume="ok"), cfg(thread)) == {"log": ["edit", "ok"]}
