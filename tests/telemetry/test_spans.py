"""The spans of runs in one process: the tree, the attributes, events, errors, subgraphs."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from apps.services import require_package
from conftest import Otel
from typing_extensions import TypedDict

from hitl_async import END, START, Command, RetryPolicy, StateGraph, interrupt

require_package("opentelemetry.sdk", '".[test]" (opentelemetry-sdk)')
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

pytestmark = pytest.mark.anyio


class State(TypedDict, total=False):
    item: str
    answer: str
    log: Annotated[list[str], operator.add]


async def prepare(state: State) -> dict[str, Any]:
    return {"log": ["prepare"]}


async def review(state: State) -> dict[str, Any]:
    return {"answer": interrupt({"approve": state["item"]})}


async def act(state: State) -> dict[str, Any]:
    return {"log": [f"act:{state['answer']}"]}


def approval(saver: Any, name: str = "approval") -> Any:
    b = StateGraph(State)
    b.add_node("prepare", prepare)
    b.add_node("review", review)
    b.add_node("act", act)
    b.add_edge(START, "prepare")
    b.add_edge("prepare", "review")
    b.add_edge("review", "act")
    b.add_edge("act", END)
    return b.compile(checkpointer=saver, name=name)


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next((s for s in spans if s.context.span_id == span.parent.span_id), None)


def under(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == span.context.span_id]


async def test_a_paused_and_resumed_thread_as_spans(saver: Any, otel: Otel) -> None:
    graph = approval(saver)
    cfg = {"configurable": {"thread_id": "t1"}}
    paused = await graph.ainvoke({"item": "laptop"}, cfg)
    (asked,) = paused["__interrupt__"]
    stored = await graph.checkpointer.load("t1")
    first = otel.finished()
    otel.spans.clear()
    assert (await graph.ainvoke(Command(resume="yes"), cfg))["log"] == ["prepare", "act:yes"]
    second = otel.finished()

    (paused_run,) = [s for s in first if s.name == "hitl.run"]
    (resumed_run,) = [s for s in second if s.name == "hitl.run"]
    assert paused_run.parent is None and resumed_run.parent is None  # no caller's span here
    assert paused_run.context.trace_id != resumed_run.context.trace_id
    system = {"SqliteSaver": "sqlite", "PostgresSaver": "postgresql", "RedisSaver": "redis"}
    db_system = system.get(type(saver).__name__, "memory")
    for run, outcome in ((paused_run, "paused"), (resumed_run, "completed")):
        attrs = run.attributes or {}
        assert attrs["hitl.run.outcome"] == outcome
        assert attrs["hitl.thread_id"] == "t1"
        assert attrs["hitl.graph"] == "approval"
        assert attrs["hitl.checkpoint_ns"] == ""
        assert attrs["hitl.checkpoint_id"]
        assert attrs["db.system"] == db_system
        assert run.status.status_code is StatusCode.UNSET

    # The pause: steps 0 (input), 1 (prepare), 2 (review, interrupted); the run span has the
    # interrupt event and the lease it took.
    steps = [s for s in under(paused_run, first) if s.name == "hitl.step"]
    assert [(s.attributes or {})["hitl.step"] for s in steps] == [0, 1, 2]
    review_span = next(s for s in first if s.name == "hitl.node review")
    assert parent_of(review_span, first) is steps[2]
    review_attrs = review_span.attributes or {}
    assert review_attrs["hitl.node"] == "review"
    assert review_attrs["hitl.step"] == 2
    assert review_attrs["hitl.node.outcome"] == "interrupted"
    assert [e.name for e in review_span.events] == ["hitl.interrupt"]
    names = [e.name for e in paused_run.events]
    assert names == ["hitl.lease.acquire", "hitl.interrupt"]
    assert (paused_run.events[1].attributes or {})["hitl.interrupt_id"] == asked.id
    assert (paused_run.events[1].attributes or {})["hitl.node"] == "review"

    # Every store call is a client span inside the run, with the store's system.
    stores = [s for s in first if s.name.startswith("hitl.store.")]
    assert stores
    for span in stores:
        ancestor = parent_of(span, first)
        while ancestor is not None and ancestor is not paused_run:
            ancestor = parent_of(ancestor, first)
        assert ancestor is paused_run, span.name
        attrs = span.attributes or {}
        assert attrs["db.system"] == db_system
        assert attrs["db.operation.name"] == span.name.removeprefix("hitl.store.")
        assert attrs["hitl.thread_id"] == "t1"

    # The pause keeps the run's traceparent with the interrupt (one pending write) ...
    assert stored is not None
    (row,) = [w for w in stored.writes if w.channel == "__trace__"]
    assert graph.serde.loads(row.data).split("-")[1:3] == [
        f"{paused_run.context.trace_id:032x}",
        f"{paused_run.context.span_id:016x}",
    ]
    # ... and the resume links to it; the answered interrupt is an event.
    (link,) = resumed_run.links
    assert link.context.span_id == paused_run.context.span_id
    resume = next(e for e in resumed_run.events if e.name == "hitl.resume")
    assert (resume.attributes or {})["hitl.interrupt_id"] == asked.id
    nodes = [s.name for s in second if s.name.startswith("hitl.node")]
    assert nodes == ["hitl.node review", "hitl.node act"]


async def test_a_failing_node_is_recorded_with_its_retries(otel: Otel) -> None:
    from hitl_async import InMemorySaver

    calls = []

    async def flaky(state: State) -> dict[str, Any]:
        calls.append(1)
        raise ConnectionError(f"attempt {len(calls)}")

    b = StateGraph(State)
    b.add_node(
        "flaky",
        flaky,
        retry_policy=RetryPolicy(max_attempts=2, initial_interval=0.01, jitter=False),
    )
    b.add_edge(START, "flaky")
    graph = b.compile(checkpointer=InMemorySaver(), name="flaky")
    with pytest.raises(ConnectionError):
        await graph.ainvoke({"item": "x"}, {"configurable": {"thread_id": "f"}})
    spans = otel.finished()
    (run,) = [s for s in spans if s.name == "hitl.run"]
    (node,) = [s for s in spans if s.name == "hitl.node flaky"]
    for span in (run, node):
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "ConnectionError"
        exceptions = [e for e in span.events if e.name == "exception"]
        assert exceptions and (exceptions[0].attributes or {})["exception.message"] == "attempt 2"
    assert (run.attributes or {})["hitl.run.outcome"] == "failed"
    retry = next(e for e in run.events if e.name == "hitl.retry")
    attrs = retry.attributes or {}
    assert attrs["hitl.node"] == "flaky"
    assert attrs["hitl.attempt"] == 1
    assert attrs["exception.message"] == "attempt 1"
    assert any(e.name == "hitl.retry" for e in node.events)
    assert otel.total("hitl.run.failed", **{"error.type": "ConnectionError"}) == 1


async def test_subgraph_steps_and_nodes_nest_under_the_parent_node(otel: Otel) -> None:
    from hitl_async import InMemorySaver

    inner = approval(None, name="inner")
    b = StateGraph(State)
    b.add_node("outer", inner)
    b.add_edge(START, "outer")
    graph = b.compile(checkpointer=InMemorySaver(), name="outer")
    cfg = {"configurable": {"thread_id": "s"}}
    await graph.ainvoke({"item": "desk"}, cfg)
    await graph.ainvoke(Command(resume="ok"), cfg)
    spans = otel.finished()
    outer_nodes = [s for s in spans if s.name == "hitl.node outer"]
    assert len(outer_nodes) == 2
    for outer in outer_nodes:
        sub_steps = [s for s in under(outer, spans) if s.name == "hitl.step"]
        assert sub_steps
        for step in sub_steps:
            attrs = step.attributes or {}
            assert attrs["hitl.graph"] == "inner"
            assert str(attrs["hitl.checkpoint_ns"]).startswith("outer:")
    inner_review = [s for s in spans if s.name == "hitl.node review"]
    assert {(s.attributes or {})["hitl.node.outcome"] for s in inner_review} == {
        "interrupted",
        "done",
    }
    # Only the top-level runs have run spans; the resume links to the pause.
    runs = [s for s in spans if s.name == "hitl.run"]
    assert len(runs) == 2 and runs[1].links[0].context.span_id == runs[0].context.span_id


async def test_an_abandoned_stream_ends_its_run_span(otel: Otel) -> None:
    from hitl_async import InMemorySaver

    graph = approval(InMemorySaver())
    stream = graph.astream({"item": "x"}, {"configurable": {"thread_id": "a"}})
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    (run,) = otel.named("hitl.run")
    assert (run.attributes or {})["hitl.run.outcome"] == "abandoned"
    assert run.status.status_code is StatusCode.UNSET
    assert otel.total("hitl.run.finished", **{"hitl.run.outcome": "abandoned"}) == 1


async def test_a_trace_the_sampler_drops_builds_no_spans_but_counts(otel_installer: Any) -> None:
    from hitl_async import InMemorySaver

    otel = otel_installer(ALWAYS_OFF)
    graph = approval(InMemorySaver())
    cfg = {"configurable": {"thread_id": "d"}}
    await graph.ainvoke({"item": "x"}, cfg)
    # No span: nothing to link to, so no traceparent is stored with the pause.
    paused = await graph.checkpointer.load("d")
    assert paused is not None and paused.writes
    assert all(w.channel != "__trace__" for w in paused.writes)
    await graph.ainvoke(Command(resume="no"), cfg)
    assert otel.finished() == []
    assert otel.total("hitl.run.finished") == 2
    assert otel.total("hitl.node.duration", **{"hitl.node": "act"}) == 1


async def test_a_subgraph_handing_a_command_to_its_parent_is_no_error(otel: Otel) -> None:
    from hitl_async import InMemorySaver

    async def escalate(state: State) -> Command[str]:
        return Command(graph=Command.PARENT, goto="after", update={"log": ["escalated"]})

    inner = StateGraph(State)
    inner.add_node("escalate", escalate)
    inner.add_edge(START, "escalate")
    outer = StateGraph(State)
    outer.add_node("inner", inner.compile(name="inner"))
    outer.add_node("after", act)
    outer.add_edge(START, "inner")
    graph = outer.compile(checkpointer=InMemorySaver(), name="outer")
    out = await graph.ainvoke({"answer": "ok"}, {"configurable": {"thread_id": "p"}})
    assert out["log"] == ["escalated", "act:ok"]
    spans = otel.finished()
    assert {s.name for s in spans} >= {"hitl.node inner", "hitl.node escalate", "hitl.node after"}
    assert [s.name for s in spans if s.status.status_code is StatusCode.ERROR] == []
    (run,) = [s for s in spans if s.name == "hitl.run"]
    assert (run.attributes or {})["hitl.run.outcome"] == "completed"
