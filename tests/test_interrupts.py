"""Human in the loop: interrupt(), resuming (scalar, by id, partial maps), static interrupts,
Command(resume, update, goto), interrupt ids, and the strict resume errors."""

from __future__ import annotations

import copy
import operator
import re
from collections import Counter
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import (
    AmbiguousResumeError,
    CheckpointerRequiredError,
    Command,
    InMemorySaver,
    Interrupt,
    NoPendingInterruptError,
    Send,
    UnknownInterruptError,
    interrupt,
)
from hitl_async.graph import END, START, StateGraph

HEX32 = re.compile(r"[0-9a-f]{32}")


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    d: str
    u: str
    answers: list[Any]


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def interrupts_of(events: list[Any]) -> list[Interrupt]:
    return [i for e in events if "__interrupt__" in e for i in e["__interrupt__"]]


def single_ask(runs: Counter[str], saver: InMemorySaver | None = None) -> Any:
    """START -> ask (interrupt) -> after -> END."""

    def ask(state: S) -> dict[str, Any]:
        runs["ask"] += 1
        answer = interrupt({"q": "approve?"})
        return {"d": answer, "log": ["ask"]}

    def after(state: S) -> dict[str, Any]:
        runs["after"] += 1
        return {"log": ["after"]}

    b = StateGraph(S)
    b.add_node("ask", ask)
    b.add_node("after", after)
    b.add_edge(START, "ask")
    b.add_edge("ask", "after")
    b.add_edge("after", END)
    return b.compile(checkpointer=saver or InMemorySaver())


def triple_review(runs: Counter[str], saver: InMemorySaver | None = None) -> Any:
    """START -> fan out Send('review', item) for A, B, C; each interrupts; then done."""

    def review(arg: dict[str, Any]) -> dict[str, Any]:
        runs[arg["item"]] += 1
        answer = interrupt({"item": arg["item"]})
        return {"log": [f"{arg['item']}={answer}"]}

    def done(state: S) -> dict[str, Any]:
        runs["done"] += 1
        return {"log": ["done"]}

    b = StateGraph(S)
    b.add_node("plan", lambda s: None)
    b.add_node("review", review)
    b.add_node("done", done)
    b.add_edge(START, "plan")
    b.add_conditional_edges("plan", lambda s: [Send("review", {"item": i}) for i in "ABC"])
    b.add_edge("review", "done")
    return b.compile(checkpointer=saver or InMemorySaver())


# -- pausing and resuming --------------------------------------------------------------------------


def test_interrupt_pauses_and_node_reruns_from_top_on_resume() -> None:
    runs: Counter[str] = Counter()
    graph = single_ask(runs)
    events = list(graph.stream({"log": []}, cfg()))
    assert len(events) == 1
    (intr,) = events[0]["__interrupt__"]
    assert isinstance(events[0]["__interrupt__"], tuple)
    assert intr.value == {"q": "approve?"} and HEX32.fullmatch(intr.id)
    snap = graph.get_state(cfg())
    assert snap.next == ("ask",)
    assert snap.interrupts == (intr,)
    assert runs == {"ask": 1}

    events = list(graph.stream(Command(resume="yes"), cfg()))
    assert events == [{"ask": {"d": "yes", "log": ["ask"]}}, {"after": {"log": ["after"]}}]
    assert runs == {"ask": 2, "after": 1}
    snap = graph.get_state(cfg())
    assert snap.next == () and snap.interrupts == ()
    assert snap.values == {"d": "yes", "log": ["ask", "after"]}


def test_several_interrupts_in_one_node() -> None:
    runs: Counter[str] = Counter()

    def review(state: S) -> dict[str, Any]:
        runs["review"] += 1
        first = interrupt("first")
        second = interrupt("second")
        return {"answers": [first, second]}

    b = StateGraph(S)
    b.add_node("review", review)
    b.add_edge(START, "review")
    graph = b.compile(checkpointer=InMemorySaver())
    (i1,) = interrupts_of(list(graph.stream({"log": []}, cfg())))
    cp1 = graph.get_state(cfg()).config["configurable"]["checkpoint_id"]
    (i2,) = interrupts_of(list(graph.stream(Command(resume="A"), cfg())))
    assert (i1.value, i2.value) == ("first", "second")
    assert i1.id != i2.id
    snap = graph.get_state(cfg())
    assert snap.interrupts == (i2,) and snap.next == ("review",)
    # a re-pause inside the same node writes no new checkpoint
    assert snap.config["configurable"]["checkpoint_id"] == cp1
    assert list(graph.stream(Command(resume="B"), cfg())) == [{"review": {"answers": ["A", "B"]}}]
    assert runs["review"] == 3


def test_parallel_send_tasks_interrupt_each_with_own_id() -> None:
    runs: Counter[str] = Counter()
    graph = triple_review(runs)
    pending = interrupts_of(list(graph.stream({"log": []}, cfg())))
    assert sorted(i.value["item"] for i in pending) == ["A", "B", "C"]
    assert len({i.id for i in pending}) == 3
    snap = graph.get_state(cfg())
    assert snap.next == ("review", "review", "review")
    assert [i.value["item"] for i in snap.interrupts] == ["A", "B", "C"]  # task order
    assert [t.interrupts[0].value["item"] for t in snap.tasks] == ["A", "B", "C"]
    assert [t.path for t in snap.tasks] == [
        ("__pregel_push", 0, False),
        ("__pregel_push", 1, False),
        ("__pregel_push", 2, False),
    ]


def test_resume_by_id_map_answers_all() -> None:
    runs: Counter[str] = Counter()
    graph = triple_review(runs)
    list(graph.stream({"log": []}, cfg()))
    ids = {i.value["item"]: i.id for i in graph.get_state(cfg()).interrupts}
    out = graph.invoke(Command(resume={ids[k]: f"ok{k}" for k in "CAB"}), cfg())
    assert out == {"log": ["A=okA", "B=okB", "C=okC", "done"]}  # task order
    assert runs == {"A": 2, "B": 2, "C": 2, "done": 1}


def test_partial_resume_map_reruns_only_answered_tasks() -> None:
    runs: Counter[str] = Counter()
    graph = triple_review(runs)
    list(graph.stream({"log": []}, cfg()))
    before = graph.get_state(cfg())
    ids = {i.value["item"]: i.id for i in before.interrupts}

    events = list(graph.stream(Command(resume={ids["B"]: "okB"}), cfg()))
    assert {"review": {"log": ["B=okB"]}} in events
    assert runs == {"A": 1, "B": 2, "C": 1}  # A and C are not rerun
    snap = graph.get_state(cfg())
    assert snap.next == ("review", "review")
    assert [(i.value["item"], i.id) for i in snap.interrupts] == [("A", ids["A"]), ("C", ids["C"])]
    assert snap.config == before.config  # the step is not complete
    assert snap.values["log"] == ["B=okB"]
    assert runs["done"] == 0

    out = graph.invoke(Command(resume={ids["A"]: "okA", ids["C"]: "okC"}), cfg())
    assert out == {"log": ["A=okA", "B=okB", "C=okC", "done"]}
    assert runs == {"A": 2, "B": 2, "C": 2, "done": 1}


def test_successor_runs_only_after_every_partial_answer() -> None:
    runs: Counter[str] = Counter()
    graph = triple_review(runs)
    list(graph.stream({"log": []}, cfg()))
    ids = [i.id for i in graph.get_state(cfg()).interrupts]
    for n, iid in enumerate(ids):
        assert runs["done"] == 0
        graph.invoke(Command(resume={iid: n}), cfg())
    assert runs["done"] == 1
    assert graph.get_state(cfg()).values["log"] == ["A=0", "B=1", "C=2", "done"]


def test_resume_dict_with_non_id_keys_is_a_plain_value() -> None:
    runs: Counter[str] = Counter()
    graph = single_ask(runs)
    list(graph.stream({"log": []}, cfg()))
    out = graph.invoke(Command(resume={"nope": "approved"}), cfg())
    assert out["d"] == {"nope": "approved"}


def _abc(**compile_kw: Any) -> tuple[Any, Counter[str]]:
    runs: Counter[str] = Counter()

    def node(name: str) -> Any:
        def fn(state: S) -> dict[str, Any]:
            runs[name] += 1
            return {"log": [name]}

        return fn

    b = StateGraph(S)
    b.add_sequence([("a", node("a")), ("b", node("b")), ("c", node("c"))])
    b.add_edge(START, "a")
    return b.compile(checkpointer=InMemorySaver(), **compile_kw), runs


def test_interrupt_before() -> None:
    graph, runs = _abc(interrupt_before=["b"])
    events = list(graph.stream({"log": []}, cfg()))
    assert events == [{"a": {"log": ["a"]}}, {"__interrupt__": ()}]
    snap = graph.get_state(cfg())
    assert snap.next == ("b",) and snap.interrupts == ()
    assert runs == {"a": 1}
    assert list(graph.stream(None, cfg())) == [{"b": {"log": ["b"]}}, {"c": {"log": ["c"]}}]
    assert graph.get_state(cfg()).values == {"log": ["a", "b", "c"]}


def test_interrupt_after() -> None:
    graph, runs = _abc(interrupt_after=["b"])
    events = list(graph.stream({"log": []}, cfg()))
    assert events == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}, {"__interrupt__": ()}]
    snap = graph.get_state(cfg())
    assert snap.next == ("c",) and snap.interrupts == ()
    assert list(graph.stream(None, cfg())) == [{"c": {"log": ["c"]}}]
    assert runs == {"a": 1, "b": 1, "c": 1}


def test_interrupt_before_passed_at_call_time() -> None:
    graph, _ = _abc()
    events = list(graph.stream({"log": []}, cfg(), interrupt_before=["c"]))
    assert events[-1] == {"__interrupt__": ()}
    assert graph.get_state(cfg()).next == ("c",)
    assert list(graph.stream(None, cfg())) == [{"c": {"log": ["c"]}}]


def test_command_resume_update_goto_combined() -> None:
    seen: dict[str, Any] = {}

    def ask(state: S) -> dict[str, Any]:
        answer = interrupt("q")
        seen["ask"] = state.get("u")
        return {"d": answer, "log": ["ask"]}

    def other(state: S) -> dict[str, Any]:
        seen["other"] = state.get("u")
        return {"log": ["other"]}

    b = StateGraph(S)
    b.add_node("ask", ask)
    b.add_node("other", other)
    b.add_node("after", lambda s: {"log": ["after"]})
    b.add_edge(START, "ask")
    b.add_edge("ask", "after")
    graph = b.compile(checkpointer=InMemorySaver())
    list(graph.stream({"log": []}, cfg()))
    events = list(graph.stream(Command(resume="R", update={"u": "U"}, goto="other"), cfg()))
    # ask and other run together: each is reported as it finishes, in either order
    assert sorted(events[:2], key=str) == [
        {"ask": {"d": "R", "log": ["ask"]}},
        {"other": {"log": ["other"]}},
    ]
    assert events[2:] == [{"after": {"log": ["after"]}}]
    assert seen == {"ask": "U", "other": "U"}
    snap = graph.get_state(cfg())
    assert snap.values == {"d": "R", "u": "U", "log": ["ask", "other", "after"]}
    # ask and other ran together in step 1; after in step 2
    assert snap.metadata["step"] == 2
    steps = {s.metadata["step"]: s for s in graph.get_state_history(cfg())}
    assert steps[1].next == ("after",)
    assert steps[1].values["log"] == ["ask", "other"]


def test_interrupt_ids_stable_across_reruns_and_unique_per_call() -> None:
    runs: Counter[str] = Counter()
    graph = single_ask(runs)
    (first,) = interrupts_of(list(graph.stream({"log": []}, cfg("one"))))
    checkpoint = graph.get_state(cfg("one")).config
    again = list(graph.stream(None, cfg("one")))
    assert again == [{"__interrupt__": (first,)}]
    assert runs["ask"] == 2  # stream(None) reruns the paused node, which asks again (LangGraph)
    assert graph.get_state(cfg("one")).config == checkpoint
    (other_thread,) = interrupts_of(list(graph.stream({"log": []}, cfg("two"))))
    assert other_thread.id != first.id


# -- strict errors ---------------------------------------------------------------------------------


def fingerprint(graph: Any, saver: InMemorySaver, config: dict[str, Any]) -> Any:
    snap = graph.get_state(config)
    return (
        snap.values,
        snap.next,
        snap.interrupts,
        snap.config["configurable"].get("checkpoint_id"),
        len(list(graph.get_state_history(config))),
        copy.deepcopy(saver._threads),
    )


def test_unknown_interrupt_id_leaves_thread_unchanged() -> None:
    saver, runs = InMemorySaver(), Counter[str]()
    graph = single_ask(runs, saver)
    list(graph.stream({"log": []}, cfg("strict")))
    (pending,) = graph.get_state(cfg("strict")).interrupts
    before = fingerprint(graph, saver, cfg("strict"))
    bogus = "0" * 32
    with pytest.raises(UnknownInterruptError) as err:
        list(graph.stream(Command(resume={bogus: "x"}), cfg("strict")))
    assert fingerprint(graph, saver, cfg("strict")) == before
    assert err.value.unknown == (bogus,)
    assert "'strict'" in str(err.value) and pending.id in str(err.value) and bogus in str(err.value)
    # a map with one valid and one unknown id is rejected whole: the valid one is not applied
    with pytest.raises(UnknownInterruptError):
        graph.invoke(Command(resume={pending.id: "yes", bogus: "x"}), cfg("strict"))
    assert fingerprint(graph, saver, cfg("strict")) == before
    assert runs == {"ask": 1}
    assert graph.invoke(Command(resume={pending.id: "yes"}), cfg("strict"))["d"] == "yes"


def test_already_answered_interrupt_id_is_unknown() -> None:
    saver = InMemorySaver()

    def review(state: S) -> dict[str, Any]:
        return {"answers": [interrupt("one"), interrupt("two")]}

    b = StateGraph(S)
    b.add_node("review", review)
    b.add_edge(START, "review")
    graph = b.compile(checkpointer=saver)
    list(graph.stream({"log": []}, cfg()))
    (first,) = graph.get_state(cfg()).interrupts
    list(graph.stream(Command(resume={first.id: 1}), cfg()))
    (second,) = graph.get_state(cfg()).interrupts
    before = fingerprint(graph, saver, cfg())
    with pytest.raises(UnknownInterruptError, match=second.id):
        list(graph.stream(Command(resume={first.id: 1}), cfg()))
    assert fingerprint(graph, saver, cfg()) == before


def test_resume_on_thread_that_does_not_exist() -> None:
    saver, runs = InMemorySaver(), Counter[str]()
    graph = single_ask(runs, saver)
    before = copy.deepcopy(saver._threads)
    with pytest.raises(NoPendingInterruptError) as err:
        graph.invoke(Command(resume="yes"), cfg("ghost"))
    assert err.value.exists is False
    assert "'ghost'" in str(err.value)
    assert saver._threads == before
    snap = graph.get_state(cfg("ghost"))
    assert snap.values == {} and snap.next == () and snap.interrupts == ()
    assert list(graph.get_state_history(cfg("ghost"))) == []
    assert not runs


def test_resume_on_finished_thread() -> None:
    saver, runs = InMemorySaver(), Counter[str]()
    graph = single_ask(runs, saver)
    list(graph.stream({"log": []}, cfg("done")))
    graph.invoke(Command(resume="yes"), cfg("done"))
    before = fingerprint(graph, saver, cfg("done"))
    with pytest.raises(NoPendingInterruptError) as err:
        list(graph.stream(Command(resume="again"), cfg("done")))
    assert err.value.exists is True
    assert "'done'" in str(err.value) and "pending ids: none" in str(err.value)
    assert fingerprint(graph, saver, cfg("done")) == before
    assert runs == {"ask": 2, "after": 1}


def test_resume_on_static_pause_continues_but_answers_by_id_are_strict() -> None:
    graph, runs = _abc(interrupt_before=["b"])
    saver = graph.checkpointer
    list(graph.stream({"log": []}, cfg()))
    before = fingerprint(graph, saver, cfg())
    with pytest.raises(UnknownInterruptError, match="0123456789abcdef0123456789abcdef"):
        graph.invoke(Command(resume={"0123456789abcdef0123456789abcdef": "r"}), cfg())
    assert fingerprint(graph, saver, cfg()) == before
    assert runs == {"a": 1}
    # A plain Command(resume=...) at a breakpoint continues the run, as LangGraph does.
    graph.invoke(Command(resume="r"), cfg())
    assert runs["b"] == 1 and graph.get_state(cfg()).next == ()


def test_scalar_resume_with_several_pending_is_ambiguous() -> None:
    saver, runs = InMemorySaver(), Counter[str]()
    graph = triple_review(runs, saver)
    list(graph.stream({"log": []}, cfg("many")))
    pending = graph.get_state(cfg("many")).interrupts
    before = fingerprint(graph, saver, cfg("many"))
    with pytest.raises(AmbiguousResumeError) as err:
        list(graph.stream(Command(resume="yes"), cfg("many")))
    assert fingerprint(graph, saver, cfg("many")) == before
    assert err.value.pending == pending
    message = str(err.value)
    assert "'many'" in message and all(i.id in message for i in pending)
    assert runs == {"A": 1, "B": 1, "C": 1}


def test_interrupt_without_checkpointer_is_an_error() -> None:
    b = StateGraph(S)
    b.add_node("first", lambda s: {"log": ["first"]})
    b.add_node("asker", lambda s: {"d": interrupt("q")})
    b.add_edge(START, "first")
    b.add_edge("first", "asker")
    graph = b.compile()
    with pytest.raises(CheckpointerRequiredError, match="'asker'") as err:
        graph.invoke({"log": []})
    assert err.value.node == "asker"
    events: list[Any] = []
    with pytest.raises(CheckpointerRequiredError):
        for e in graph.stream({"log": []}):
            events.append(e)
    assert events == [{"first": {"log": ["first"]}}]
