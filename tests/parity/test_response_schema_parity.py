"""`interrupt(value, response_schema=...)`, as LangGraph 1.2.22 behaves (observed side by side):
the `Interrupt` carries the answer's JSON Schema (a type's as pydantic makes it, a dict as
given), kept through the store; a type also turns the answer into that type for the node."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from hitl_async import Command, interrupt
from hitl_async.graph import START, StateGraph

pytestmark = pytest.mark.anyio


class Decision(BaseModel):
    ok: bool


class S(TypedDict, total=False):
    answer: Any
    kind: str


DECISION_SCHEMA = {
    "properties": {"ok": {"title": "Ok", "type": "boolean"}},
    "required": ["ok"],
    "title": "Decision",
    "type": "object",
}


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _asking(schema: Any) -> Any:
    def ask(state: S) -> dict[str, Any]:
        answer = interrupt("approve?", response_schema=schema)
        return {"answer": answer, "kind": type(answer).__name__}

    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    return g


async def test_a_model_schema_is_shown_and_the_answer_becomes_the_model(saver: Any) -> None:
    app = _asking(Decision).compile(checkpointer=saver)
    paused = await app.ainvoke({}, cfg())
    assert paused["__interrupt__"][0].response_schema == DECISION_SCHEMA
    state = await app.aget_state(cfg())
    assert state.interrupts[0].response_schema == DECISION_SCHEMA  # kept through the store
    assert state.tasks[0].interrupts[0].response_schema == DECISION_SCHEMA
    out = await app.ainvoke(Command(resume={"ok": True}), cfg())
    assert out == {"answer": Decision(ok=True), "kind": "Decision"}


async def test_a_dict_schema_is_shown_as_given_and_the_answer_left_alone() -> None:
    from hitl_async import InMemorySaver

    schema = {"type": "string"}
    app = _asking(schema).compile(checkpointer=InMemorySaver())
    paused = await app.ainvoke({}, cfg())
    assert paused["__interrupt__"][0].response_schema == schema
    assert await app.ainvoke(Command(resume={"ok": 1}), cfg()) == {
        "answer": {"ok": 1},
        "kind": "dict",
    }


async def test_an_answer_the_model_refuses_fails_the_node() -> None:
    from pydantic import ValidationError

    from hitl_async import InMemorySaver

    app = _asking(Decision).compile(checkpointer=InMemorySaver())
    await app.ainvoke({}, cfg())
    with pytest.raises(ValidationError):
        await app.ainvoke(Command(resume={"ok": "perhaps"}), cfg())
    assert (await app.aget_state(cfg())).next == ("ask",)


def test_a_schema_that_is_neither_a_type_nor_a_dict_is_refused() -> None:
    from hitl_async import InMemorySaver

    app = _asking("not a schema").compile(checkpointer=InMemorySaver())
    with pytest.raises(TypeError, match=r"response_schema=.*a type or a JSON Schema dict"):
        app.invoke({}, cfg())
