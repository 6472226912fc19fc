"""The functional API (`hitl_async.func`): `@entrypoint` and `@task`, mirroring `langgraph.func`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import anyio
import pytest

from hitl_async import (
    AmbiguousResumeError,
    CheckpointerRequiredError,
    Command,
    InMemorySaver,
    Interrupt,
    NoPendingInterruptError,
    RetryPolicy,
    interrupt,
)
from hitl_async.func import EntrypointGraph, TaskFuture, entrypoint, task
from hitl_async.graph import START, StateGraph
from hitl_async.runtime import Runtime, get_runtime

ROOT = Path(__file__).resolve().parents[1]


def cfg(thread: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


class Flaky(Exception):
    """A transient failure the retry tests retry on."""


# -- basics ---------------------------------------------------------------------------------------


def test_invoke_returns_the_return_value() -> None:
    @task
    def double(x: int) -> int:
        return x * 2

    @entrypoint(checkpointer=InMemorySaver())
    def flow(n: int) -> list[int]:
        futures = [double(i) for i in range(n)]
        return [f.result() for f in futures]

    assert isinstance(flow, EntrypointGraph)
    assert flow.invoke(3, cfg()) == [0, 2, 4]
    assert flow.get_state(cfg()).values == [0, 2, 4]


def test_stream_gives_task_results_then_the_return_value() -> None:
    @task
    def fetch(x: int) -> int:
        return x + 1

    @task(name="save_it")
    def save(x: int) -> str:
        return f"saved {x}"

    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int) -> dict[str, Any]:
        y = fetch(x).result()
        return {"y": y, "msg": save(y).result()}

    assert list(flow.stream(1, cfg("a"))) == [
        {"fetch": 2},
        {"save_it": "saved 2"},
        {"flow": {"y": 2, "msg": "saved 2"}},
    ]
    assert list(flow.stream(1, cfg("b"), stream_mode="values")) == [{"y": 2, "msg": "saved 2"}]
    assert list(flow.stream(5, cfg("c"), stream_mode=["updates", "values"])) == [
        ("updates", {"fetch": 6}),
        ("updates", {"save_it": "saved 6"}),
        ("updates", {"flow": {"y": 6, "msg": "saved 6"}}),
        ("values", {"y": 6, "msg": "saved 6"}),
    ]


def test_previous_is_the_last_return_value_of_the_thread() -> None:
    @entrypoint(checkpointer=InMemorySaver())
    def counter(step: int, *, previous: int | None = None) -> int:
        return (previous or 0) + step

    assert counter.invoke(1, cfg("a")) == 1
    assert counter.invoke(5, cfg("a")) == 6
    assert counter.invoke(1, cfg("b")) == 1  # threads are separate
    assert counter.get_state(cfg("a")).values == 6
    counter.update_state(cfg("a"), 100)  # update_state sets the value and the next `previous`
    assert counter.get_state(cfg("a")).values == 100
    assert counter.invoke(1, cfg("a")) == 101


def test_final_returns_value_and_saves_something_else() -> None:
    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int, *, previous: Any = None) -> Any:
        return entrypoint.final(value=(x, previous), save=x * 10)

    assert flow.invoke(1, cfg()) == (1, None)
    assert flow.get_state(cfg()).values == (1, None)
    assert flow.invoke(2, cfg()) == (2, 10)
    assert list(flow.stream(3, cfg())) == [{"flow": (3, 20)}]


def test_config_and_writer_parameters() -> None:
    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int, *, config: dict[str, Any], writer: Any) -> str:
        writer({"progress": x})
        return config["configurable"]["thread_id"]

    events = list(flow.stream(1, cfg("w"), stream_mode=["custom", "updates"]))
    assert events == [("custom", {"progress": 1}), ("updates", {"flow": "w"})]
    assert list(flow.stream(1, cfg("w2"))) == [{"flow": "w2"}]  # custom not asked for: dropped


def test_runtime_context_reaches_the_entrypoint_and_its_tasks() -> None:
    @dataclass
    class Ctx:
        user: str

    @task
    def greet(x: int) -> str:
        return f"{get_runtime().context.user}:{x}"

    @entrypoint(checkpointer=InMemorySaver(), context_schema=Ctx)
    def flow(x: int, *, runtime: Runtime[Ctx]) -> list[Any]:
        return [greet(x).result(), runtime.context.user, runtime.previous]

    assert flow.invoke(1, cfg(), context={"user": "ana"}) == ["ana:1", "ana", None]
    assert flow.invoke(2, cfg(), context=Ctx("bo"))[2] == ["ana:1", "ana", None]


def test_entrypoint_without_checkpointer_runs_tasks_but_cannot_pause() -> None:
    @task
    def inc(x: int) -> int:
        return x + 1

    @entrypoint()
    def flow(x: int) -> int:
        return inc(x).result()

    @entrypoint()
    def asks(x: int) -> Any:
        return interrupt("?")

    assert flow.invoke(1) == 2
    with pytest.raises(CheckpointerRequiredError):
        asks.invoke(1)


# -- kept results across pause and resume ---------------------------------------------------------


def test_side_effect_runs_once_across_two_pauses() -> None:
    ledger: list[str] = []

    @task
    def charge(order: str) -> str:
        ledger.append(order)
        return f"charged {order}"

    @entrypoint(checkpointer=InMemorySaver())
    def flow(order: str) -> dict[str, Any]:
        receipt = charge(order).result()
        first = interrupt("first?")
        second = interrupt("second?")
        return {"receipt": receipt, "answers": [first, second]}

    events = list(flow.stream("o-1", cfg()))
    assert events[0] == {"charge": "charged o-1"}
    assert events[1]["__interrupt__"][0].value == "first?"
    events = list(flow.stream(Command(resume="A"), cfg()))
    assert [e["__interrupt__"][0].value for e in events] == ["second?"]  # no task event again
    assert flow.invoke(Command(resume="B"), cfg()) == {
        "receipt": "charged o-1",
        "answers": ["A", "B"],
    }
    assert ledger == ["o-1"]


def test_unawaited_task_finishes_and_is_kept_when_the_entrypoint_pauses() -> None:
    runs: list[int] = []

    @task
    async def background(x: int) -> int:
        await anyio.sleep(0)
        runs.append(x)
        return x

    @entrypoint(checkpointer=InMemorySaver())
    async def flow(x: int) -> list[Any]:
        fut = background(x)
        answer = interrupt("go on?")
        return [await fut, answer]

    first = flow.invoke(7, cfg())
    assert first["__interrupt__"][0].value == "go on?"
    assert runs == [7]
    assert flow.invoke(Command(resume="yes"), cfg()) == [7, "yes"]
    assert runs == [7]


def test_entrypoint_retry_reuses_finished_task_results() -> None:
    charges: list[int] = []
    attempts: list[int] = []

    @task
    def charge(x: int) -> int:
        charges.append(x)
        return x

    @entrypoint(
        checkpointer=InMemorySaver(),
        retry_policy=RetryPolicy(initial_interval=0, jitter=False, retry_on=Flaky),
    )
    def flow(x: int) -> int:
        value = charge(x).result()
        attempts.append(x)
        if len(attempts) == 1:
            raise Flaky("once")
        return value

    assert flow.invoke(3, cfg()) == 3
    assert attempts == [3, 3]
    assert charges == [3]


# -- sync and async, concurrency ------------------------------------------------------------------


@pytest.mark.anyio
async def test_tasks_started_together_run_concurrently() -> None:
    a_ready, b_ready = anyio.Event(), anyio.Event()

    @task
    async def left() -> str:
        a_ready.set()
        await b_ready.wait()
        return "left"

    @task
    async def right() -> str:
        b_ready.set()
        await a_ready.wait()
        return "right"

    @entrypoint(checkpointer=InMemorySaver())
    async def flow(_: Any) -> list[str]:
        first, second = left(), right()  # neither finishes unless both run at once
        return [await first, await second]

    with anyio.fail_after(5):
        assert await flow.ainvoke("go", cfg()) == ["left", "right"]


@pytest.mark.anyio
@pytest.mark.parametrize("entry_async", [False, True], ids=["sync-entry", "async-entry"])
@pytest.mark.parametrize("task_async", [False, True], ids=["sync-task", "async-task"])
async def test_sync_and_async_entrypoints_and_tasks(entry_async: bool, task_async: bool) -> None:
    calls: list[int] = []

    if task_async:

        @task
        async def step(x: int) -> int:
            calls.append(x)
            return x * 3

    else:

        @task
        def step(x: int) -> int:
            calls.append(x)
            return x * 3

    if entry_async:

        @entrypoint(checkpointer=InMemorySaver())
        async def flow(x: int) -> list[Any]:
            y = await step(x)
            return [y, interrupt("ok?")]

    else:

        @entrypoint(checkpointer=InMemorySaver())
        def flow(x: int) -> list[Any]:
            y = step(x).result()
            return [y, interrupt("ok?")]

    paused = await flow.ainvoke(2, cfg())
    assert paused["__interrupt__"][0].value == "ok?"
    assert await flow.ainvoke(Command(resume="fine"), cfg()) == [6, "fine"]
    assert calls == [2]


def test_sync_tasks_run_concurrently_in_worker_threads() -> None:
    import threading

    barrier = threading.Barrier(2, timeout=5)

    @task
    def meet(name: str) -> str:
        barrier.wait()  # both calls must be running at the same time to pass
        return name

    @entrypoint(checkpointer=InMemorySaver())
    def flow(_: Any) -> list[str]:
        futures = [meet("a"), meet("b")]
        return [f.result() for f in futures]

    assert flow.invoke(0, cfg()) == ["a", "b"]


@pytest.mark.anyio
async def test_result_in_an_async_entrypoint_says_to_await() -> None:
    gate = anyio.Event()

    @task
    async def slow() -> int:
        await gate.wait()
        return 1

    @entrypoint(checkpointer=InMemorySaver())
    async def flow(_: Any) -> str:
        fut = slow()
        assert isinstance(fut, TaskFuture) and not fut.done()
        try:
            fut.result()
        except RuntimeError as exc:
            message = str(exc)
        gate.set()
        await fut
        return message

    assert "await" in await flow.ainvoke(0, cfg())


@pytest.mark.anyio
async def test_cancelling_a_run_stops_a_sync_entrypoint_waiting_on_a_task() -> None:
    """A sync entrypoint blocked in `result()` is woken when the run is cancelled (it used to
    keep the run's worker thread, and so the cancelled run, waiting forever)."""
    started = anyio.Event()

    @task
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    @entrypoint(checkpointer=InMemorySaver())
    def flow(_: Any) -> Any:
        return forever().result()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(flow.ainvoke, 0, cfg())
            await started.wait()
            tg.cancel_scope.cancel()


def test_task_calling_a_task() -> None:
    @task
    def inner(x: int) -> int:
        return x + 1

    @task
    def outer(x: int) -> int:
        return inner(x).result() * 10

    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int) -> int:
        return outer(x).result()

    assert list(flow.stream(1, cfg())) == [{"inner": 2}, {"outer": 20}, {"flow": 20}]


# -- retry ----------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True], ids=["sync-task", "async-task"])
async def test_retry_policy_on_a_task(is_async: bool) -> None:
    attempts: list[int] = []
    policy = RetryPolicy(initial_interval=0, jitter=False, max_attempts=3, retry_on=Flaky)

    def body(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            raise Flaky(f"attempt {len(attempts)}")
        return x

    async def abody(x: int) -> int:
        return body(x)

    flaky = task(retry_policy=policy)(abody if is_async else body)

    @entrypoint(checkpointer=InMemorySaver())
    async def flow(x: int) -> int:
        return await flaky(x)

    assert await flow.ainvoke(4, cfg()) == 4
    assert attempts == [4, 4, 4]


def test_task_errors_the_policy_does_not_cover_fail_the_run_at_once() -> None:
    attempts: list[int] = []

    @task(retry_policy=RetryPolicy(initial_interval=0, jitter=False, retry_on=KeyError))
    def never(x: int) -> int:
        attempts.append(x)
        raise Flaky("not retried")

    @entrypoint(checkpointer=InMemorySaver())
    def fails(x: int) -> int:
        return never(x).result()

    with pytest.raises(Flaky, match="not retried"):
        fails.invoke(1, cfg())
    assert attempts == [1]


# -- interrupts inside tasks ----------------------------------------------------------------------


def test_interrupt_inside_a_task_pauses_the_entrypoint() -> None:
    runs: list[str] = []

    @task
    def approve(item: str) -> str:
        runs.append(item)
        return interrupt({"approve": item})

    @entrypoint(checkpointer=InMemorySaver())
    def flow(item: str) -> str:
        return f"{item}: {approve(item).result()}"

    events = list(flow.stream("laptop", cfg()))
    (intr,) = events[-1]["__interrupt__"]
    assert intr.value == {"approve": "laptop"}
    state = flow.get_state(cfg())
    assert state.next == ("flow",)
    assert state.interrupts == (intr,)
    assert flow.invoke(Command(resume={intr.id: "approved"}), cfg()) == "laptop: approved"
    assert runs == ["laptop", "laptop"]  # the task reran to receive its answer


def test_answers_go_to_the_interrupt_they_answer_when_a_task_is_kept() -> None:
    """A task that paused, got its answer and finished is kept: its body (and its interrupt)
    does not run again, yet the entrypoint's own interrupt still gets its own answer."""
    runs: list[str] = []

    @task
    def ask_manager(x: int) -> str:
        runs.append("manager")
        return interrupt("manager?")

    @task
    def ask_legal(x: int) -> str:
        runs.append("legal")
        return interrupt("legal?")

    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int) -> dict[str, Any]:
        manager = ask_manager(x).result()
        own = interrupt("entrypoint?")
        legal = ask_legal(x).result()
        again = interrupt("entrypoint again?")
        return {"manager": manager, "own": own, "legal": legal, "again": again}

    questions = []
    result = flow.invoke(1, cfg())
    for answer in ["m", "e", "l", "e2"]:
        (intr,) = result["__interrupt__"]
        questions.append(intr.value)
        result = flow.invoke(Command(resume=answer), cfg())
    assert questions == ["manager?", "entrypoint?", "legal?", "entrypoint again?"]
    assert result == {"manager": "m", "own": "e", "legal": "l", "again": "e2"}
    assert runs == ["manager", "manager", "legal", "legal"]


def test_interrupt_ids_are_stable_and_distinct_between_body_and_tasks() -> None:
    @task
    def ask(x: int) -> Any:
        return interrupt("task?")

    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int) -> list[Any]:
        return [ask(x).result(), interrupt("body?")]

    first = flow.invoke(1, cfg())["__interrupt__"][0]
    again = list(flow.stream(None, cfg()))[-1]["__interrupt__"][0]  # rerun without an answer
    assert again == first
    second = flow.invoke(Command(resume="t"), cfg())["__interrupt__"][0]
    assert second.value == "body?" and second.id != first.id
    assert flow.invoke(Command(resume="b"), cfg()) == ["t", "b"]


def test_tasks_interrupting_together_pause_on_all_and_are_answered_by_id() -> None:
    runs: list[str] = []

    @task
    def ask(who: str) -> str:
        runs.append(who)
        return f"{who}={interrupt(who)}"

    @entrypoint(checkpointer=InMemorySaver())
    def flow(_: Any) -> list[str]:
        futures = [ask("a"), ask("b"), ask("c")]
        return [f.result() for f in futures]

    first = flow.invoke(0, cfg())["__interrupt__"]
    assert [i.value for i in first] == ["a", "b", "c"]
    assert flow.get_state(cfg()).interrupts == tuple(first)
    with pytest.raises(AmbiguousResumeError):
        flow.invoke(Command(resume="?"), cfg())
    by_value = {i.value: i.id for i in first}
    # Answer two of three: the third pauses again with the same id; the others are kept.
    second = flow.invoke(Command(resume={by_value["a"]: "A", by_value["c"]: "C"}), cfg())
    assert second["__interrupt__"] == [first[1]]
    assert flow.invoke(Command(resume="B"), cfg()) == ["a=A", "b=B", "c=C"]
    assert sorted(runs) == ["a", "a", "b", "b", "b", "c", "c"]


def test_an_entrypoint_called_inside_an_entrypoint_pauses_and_resumes() -> None:
    @entrypoint()
    def inner(x: int) -> list[Any]:
        return [x, interrupt("inner?")]

    @entrypoint(checkpointer=InMemorySaver())
    def outer(x: int) -> dict[str, Any]:
        return {"inner": inner.invoke(x + 1), "outer": interrupt("outer?")}

    (asked,) = outer.invoke(1, cfg())["__interrupt__"]
    assert asked.value == "inner?"
    (asked,) = outer.invoke(Command(resume="i"), cfg())["__interrupt__"]
    assert asked.value == "outer?"
    assert outer.invoke(Command(resume="o"), cfg()) == {"inner": [2, "i"], "outer": "o"}


@pytest.mark.anyio
async def test_get_state_while_paused_and_after() -> None:
    @task
    async def prepare(x: int) -> int:
        return x + 1

    @entrypoint(checkpointer=InMemorySaver())
    async def flow(x: int) -> dict[str, Any]:
        y = await prepare(x)
        return {"y": y, "ok": interrupt({"check": y})}

    assert (await flow.aget_state(cfg())).values is None  # a new thread
    await flow.ainvoke(1, cfg())
    paused = await flow.aget_state(cfg())
    assert paused.values is None  # nothing returned yet
    assert paused.next == ("flow",)
    assert paused.interrupts == (Interrupt(value={"check": 2}, id=paused.interrupts[0].id),)
    assert paused.tasks[0].interrupts == paused.interrupts

    assert await flow.ainvoke(Command(resume=True), cfg()) == {"y": 2, "ok": True}
    done = await flow.aget_state(cfg())
    assert done.values == {"y": 2, "ok": True}
    assert done.next == () and done.interrupts == ()
    history = [s async for s in flow.aget_state_history(cfg())]
    assert history[0].values == {"y": 2, "ok": True}
    assert any(s.next == ("flow",) for s in history)


def test_strict_resume_errors_still_apply() -> None:
    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int) -> int:
        return x

    with pytest.raises(NoPendingInterruptError):
        flow.invoke(Command(resume="x"), cfg("new"))
    assert flow.invoke(1, cfg()) == 1
    with pytest.raises(NoPendingInterruptError):
        flow.invoke(Command(resume="x"), cfg())
    assert flow.get_state(cfg()).values == 1


def test_a_new_input_while_paused_starts_over() -> None:
    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int) -> list[Any]:
        return [x, interrupt("?")]

    flow.invoke(1, cfg())
    paused = flow.invoke(2, cfg())
    assert paused["__interrupt__"][0].value == "?"
    assert flow.invoke(Command(resume="r"), cfg()) == [2, "r"]


# -- misuse ---------------------------------------------------------------------------------------


def test_calling_a_task_outside_a_workflow_is_a_clear_error() -> None:
    """Outside an entrypoint or a graph node a task call is refused; from a graph node it runs
    as LangGraph's do (also a node of a graph an entrypoint runs)."""

    @task
    def inc(x: int) -> int:
        return x + 1

    with pytest.raises(RuntimeError, match="outside an @entrypoint or a graph node"):
        inc(1)
    assert inc.func(1) == 2

    class S(TypedDict):
        x: int

    def node(state: S) -> dict[str, Any]:
        return {"x": inc(state["x"]).result()}

    graph = StateGraph(S).add_node("node", node).add_edge(START, "node").compile()
    assert graph.invoke({"x": 1}) == {"x": 2}

    @entrypoint(checkpointer=InMemorySaver())
    def flow(x: int) -> Any:
        return graph.invoke({"x": x})

    assert flow.invoke(1, cfg()) == {"x": 2}


def test_entrypoint_without_parentheses_is_a_clear_error() -> None:
    def flow(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="@entrypoint\\(\\)"):
        entrypoint(flow)  # type: ignore[arg-type]


# -- the example ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "status"), [("yes", "refunded"), ("no", "held")])
def test_refund_example_runs(answer: str, status: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "refund_functional.py"), "--answer", answer],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = proc.stdout
    assert "paused, asking a human: Charge-back cb-A-1042 is done." in out
    assert f"Outcome: {status} (order A-1042)" in out
    assert out.count("[payments] charged back") == 1
    assert "Charge-back ran 1 time(s): exactly once = True" in out
