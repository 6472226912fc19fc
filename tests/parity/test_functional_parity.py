"""The functional API (`@entrypoint`, `@task`), restated from LangGraph's tests, on every
driver."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import pytest

from hitl_async import (
    Command,
    GeneratorNotSupportedError,
    entrypoint,
    interrupt,
    task,
)

pytestmark = pytest.mark.anyio


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


# test_pregel_async.py::test_interrupt_functional
async def test_interrupt_in_the_entrypoint_between_tasks(saver: Any) -> None:
    @task
    async def foo(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": state["a"] + "foo"}

    @task
    async def bar(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": state["a"] + "bar", "b": state["b"]}

    @entrypoint(checkpointer=saver)
    async def graph(inputs: dict[str, Any]) -> dict[str, Any]:
        foo_result = await foo(inputs)
        value = interrupt("Provide value for bar:")
        return await bar({**foo_result, "b": value})

    paused = await graph.ainvoke({"a": ""}, cfg())
    assert [i.value for i in paused["__interrupt__"]] == ["Provide value for bar:"]
    assert await graph.ainvoke(Command(resume="bar"), cfg()) == {"a": "foobar", "b": "bar"}


# test_pregel_async.py::test_interrupt_task_functional
async def test_interrupt_inside_a_task(saver: Any) -> None:
    @task
    async def foo(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": state["a"] + "foo"}

    @task
    async def bar(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": state["a"] + interrupt("Provide value for bar:")}

    @entrypoint(checkpointer=saver)
    async def graph(inputs: dict[str, Any]) -> dict[str, Any]:
        return await bar(await foo(inputs))

    paused = await graph.ainvoke({"a": ""}, cfg())
    assert list(paused) == ["__interrupt__"]
    assert [i.value for i in paused["__interrupt__"]] == ["Provide value for bar:"]
    assert await graph.ainvoke(Command(resume="bar"), cfg()) == {"a": "foobar"}


# test_pregel_async.py::test_falsy_return_from_task
async def test_a_falsy_task_result_is_kept_across_a_resume(saver: Any) -> None:
    calls: list[int] = []

    @task
    async def falsy() -> bool:
        calls.append(1)
        return False

    @entrypoint(checkpointer=saver)
    async def graph(state: dict[str, Any]) -> Any:
        result = await falsy()
        return {"falsy": result, "answer": interrupt("test")}

    config = cfg(str(uuid.uuid4()))
    await graph.ainvoke({"a": 5}, config)
    assert await graph.ainvoke(Command(resume="123"), config) == {"falsy": False, "answer": "123"}
    assert calls == [1]


# test_pregel_async.py::test_multiple_interrupts_functional
async def test_task_results_are_kept_across_several_interrupts(saver: Any) -> None:
    counter = {"n": 0}

    @task
    async def double(x: int) -> int:
        counter["n"] += 1
        return 2 * x

    @entrypoint(checkpointer=saver)
    async def graph(state: dict[str, Any]) -> dict[str, Any]:
        values: list[Any] = []
        for idx in [1, 2, 3]:
            values.extend([await double(idx), interrupt({"a": "boo"})])
        return {"values": values}

    config = cfg(str(uuid.uuid4()))
    await graph.ainvoke({}, config)
    for answer in ("a", "b"):
        await graph.ainvoke(Command(resume=answer), config)
    result = await graph.ainvoke(Command(resume="c"), config)
    assert result == {"values": [2, "a", 4, "b", 6, "c"]}
    assert counter["n"] == 3


# test_pregel_async.py::test_async_entrypoint_without_checkpointer
async def test_entrypoint_without_checkpointer_has_no_previous(saver: Any) -> None:
    @entrypoint()
    async def echo(inputs: Any) -> Any:
        return inputs

    assert await echo.ainvoke({"a": "1"}, cfg()) == {"a": "1"}

    @entrypoint()
    async def remember(inputs: Any, *, previous: Any) -> Any:
        return {"previous": previous, "current": inputs}

    for _ in range(2):
        assert await remember.ainvoke({"a": "1"}, cfg()) == {
            "current": {"a": "1"},
            "previous": None,
        }


# test_pregel_async.py::test_entrypoint_stateful
async def test_entrypoint_previous_is_the_last_return_value(saver: Any) -> None:
    seen: list[Any] = []

    @entrypoint(checkpointer=saver)
    async def foo(inputs: Any, *, previous: Any) -> Any:
        seen.append(previous)
        return {"previous": previous, "current": inputs}

    one = await foo.ainvoke({"a": "1"}, cfg())
    assert one == {"current": {"a": "1"}, "previous": None}
    two = await foo.ainvoke({"a": "2"}, cfg())
    assert two == {"current": {"a": "2"}, "previous": one}
    three = await foo.ainvoke({"a": "3"}, cfg())
    assert three == {"current": {"a": "3"}, "previous": two}
    assert seen == [None, one, two]
    assert [c async for c in foo.astream({"a": "x"}, cfg("2"))] == [
        {"foo": {"current": {"a": "x"}, "previous": None}}
    ]


# test_pregel_async.py::test_entrypoint_stateful (entrypoint.final)
async def test_entrypoint_final_returns_one_value_and_saves_another(saver: Any) -> None:
    @entrypoint(checkpointer=saver)
    async def counter(n: int, *, previous: Any) -> Any:
        total = (previous or 0) + n
        return entrypoint.final(value=f"total {total}", save=total)

    assert await counter.ainvoke(2, cfg()) == "total 2"
    assert await counter.ainvoke(3, cfg()) == "total 5"


# test_pregel_async.py::test_handles_multiple_interrupts_from_tasks
async def test_tasks_that_interrupt_are_asked_one_after_the_other(saver: Any) -> None:
    @task
    async def add_participant(name: str) -> str:
        feedback = interrupt(f"add {name}?")
        return f"Added {name}!" if feedback is True else f"Skipped {name}"

    @entrypoint(checkpointer=saver)
    async def program(_: Any) -> list[str]:
        return [await add_participant("James"), await add_participant("Will")]

    first = await program.ainvoke("ignored", cfg())
    assert [i.value for i in first["__interrupt__"]] == ["add James?"]
    state = await program.aget_state(cfg())
    assert [i.value for i in state.tasks[0].interrupts] == ["add James?"]
    second = await program.ainvoke(Command(resume=True), cfg())
    assert [i.value for i in second["__interrupt__"]] == ["add Will?"]
    state = await program.aget_state(cfg())
    assert [i.value for i in state.tasks[0].interrupts] == ["add Will?"]
    assert await program.ainvoke(Command(resume=True), cfg()) == ["Added James!", "Added Will!"]


# test_pregel_async.py::test_interrupts_in_tasks_surfaced_once
async def test_an_interrupting_task_is_reported_once_in_the_stream(saver: Any) -> None:
    @task
    async def add_participant(name: str) -> str:
        return f"{name}:{interrupt(f'add {name}?')}"

    @entrypoint(checkpointer=saver)
    async def program(_: Any) -> list[str]:
        return [await add_participant("James"), await add_participant("Will")]

    first = [e async for e in program.astream("x", cfg()) if "__interrupt__" in e]
    assert len(first) == 1
    second = [e async for e in program.astream(Command(resume=True), cfg()) if "__interrupt__" in e]
    assert len(second) == 1
    assert [i.value for i in second[0]["__interrupt__"]] == ["add Will?"]
    assert await program.ainvoke(Command(resume=False), cfg()) == ["James:True", "Will:False"]


# test_pregel_async.py::test_task_before_interrupt_resume
async def test_a_task_before_asking_tasks_does_not_shift_answers(saver: Any) -> None:
    @task
    async def setup(n: int) -> int:
        return n

    @task
    async def ask(question: str) -> str:
        return interrupt(question)

    @entrypoint(checkpointer=saver)
    async def workflow(number_of_topics: int) -> dict[str, Any]:
        n = await setup(number_of_topics)
        return {"answers": [await ask(f"topic {i + 1}?") for i in range(n)]}

    out = await workflow.ainvoke(2, cfg())
    assert [i.value for i in out["__interrupt__"]] == ["topic 1?"]
    out = await workflow.ainvoke(Command(resume="answer1"), cfg())
    assert [i.value for i in out["__interrupt__"]] == ["topic 2?"]
    assert await workflow.ainvoke(Command(resume="answer2"), cfg()) == {
        "answers": ["answer1", "answer2"]
    }


# test_pregel_async.py::test_multiple_tasks_before_interrupt_resume
async def test_the_question_sees_results_of_the_tasks_before(saver: Any) -> None:
    @task
    async def step_a(x: int) -> int:
        return x + 1

    @task
    async def step_b(x: int) -> int:
        return x * 2

    @task
    async def ask(question: str) -> str:
        return interrupt(question)

    @entrypoint(checkpointer=saver)
    async def workflow(inputs: dict[str, Any]) -> dict[str, Any]:
        b = await step_b(await step_a(inputs["x"]))
        return {"computed": b, "answer": await ask(f"so far {b}; next?")}

    out = await workflow.ainvoke({"x": 5}, cfg())
    assert [i.value for i in out["__interrupt__"]] == ["so far 12; next?"]
    assert await workflow.ainvoke(Command(resume="go"), cfg()) == {"computed": 12, "answer": "go"}


# test_pregel_async.py::test_imp_stream_order
async def test_task_updates_stream_in_call_order_then_the_entrypoint(saver: Any) -> None:
    @task()
    async def foo(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": state["a"] + "foo", "b": "bar"}

    @task
    async def bar(a: str, b: str, c: str | None = None) -> dict[str, Any]:
        return {"a": a + b, "c": (c or "") + "bark"}

    @task()
    async def baz(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": state["a"] + "baz", "c": "something else"}

    @entrypoint(checkpointer=saver)
    async def graph(state: dict[str, Any]) -> dict[str, Any]:
        foo_res = await foo(state)
        return await baz(await bar(foo_res["a"], foo_res["b"]))

    assert [c async for c in graph.astream({"a": "0"}, cfg())] == [
        {"foo": {"a": "0foo", "b": "bar"}},
        {"bar": {"a": "0foobar", "c": "bark"}},
        {"baz": {"a": "0foobarbaz", "c": "something else"}},
        {"graph": {"a": "0foobarbaz", "c": "something else"}},
    ]


# issue #14: task(functools.partial(f, ...)) is named after f, as in LangGraph
async def test_a_task_of_a_partial_is_named_after_the_function(saver: Any) -> None:
    def add(x: int, y: int) -> int:
        return x + y

    add_one = task(functools.partial(add, 1))

    @entrypoint(checkpointer=saver)
    async def ep(x: int) -> int:
        return await add_one(x)

    assert add_one.name == "add"
    assert await ep.ainvoke(2, cfg()) == 3
    assert [c async for c in ep.astream(2, cfg("2"))] == [{"add": 3}, {"ep": 3}]


# issue #14: a generator entrypoint is refused at decoration, as LangGraph does
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_generator_entrypoint_is_refused_when_decorated(saver: Any, kind: str) -> None:
    with pytest.raises(NotImplementedError, match=r"[Gg]enerators are not supported") as err:
        if kind == "sync":

            @entrypoint(checkpointer=saver)
            def gen(x: int) -> Any:
                yield x

        else:

            @entrypoint(checkpointer=saver)
            async def agen(x: int) -> Any:
                yield x

    assert isinstance(err.value, GeneratorNotSupportedError)
    assert ("gen" if kind == "sync" else "agen") in str(err.value)


# test_pregel.py::test_entrypoint_output_schema_with_return_and_save, ::test_imp_task (schemas)
def test_an_entrypoints_schemas_come_from_its_annotations() -> None:
    from hitl_async import entrypoint

    @entrypoint()
    def untyped(inputs: Any, *, previous: Any) -> entrypoint.final:  # type: ignore[type-arg]
        return entrypoint.final(value="foo", save=1)

    @entrypoint()
    def typed(inputs: list[int], *, previous: Any) -> entrypoint.final[str, int]:
        return entrypoint.final(value="foo", save=1)

    assert untyped.get_output_jsonschema() == {"title": "LangGraphOutput"}
    assert typed.get_output_jsonschema() == {"title": "LangGraphOutput", "type": "string"}
    assert typed.get_input_jsonschema() == {
        "title": "LangGraphInput",
        "type": "array",
        "items": {"type": "integer"},
    }
