"""State schemas: TypedDict, dataclass and pydantic v2 states; reducers; what nodes may return."""

from __future__ import annotations

import dataclasses
import operator
import warnings
from typing import Annotated, Any

import pydantic
import pytest
from typing_extensions import TypedDict

from hitl_async import Command, InMemorySaver, InvalidUpdateError, interrupt
from hitl_async._schema import UnknownStateKeyWarning
from hitl_async.graph import START, StateGraph


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


# -- TypedDict -------------------------------------------------------------------------------------


class TD(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    flags: Annotated[dict[str, bool], merge]
    last: str


def test_typeddict_state_with_reducers() -> None:
    seen: list[Any] = []

    def a(state: TD) -> dict[str, Any]:
        seen.append(state)
        return {"log": ["a"], "flags": {"a": True}, "last": "a"}

    def b(state: TD) -> dict[str, Any]:
        return {"log": ["b"], "flags": {"b": False}, "last": "b"}

    g = StateGraph(TD)
    g.add_sequence([a, b])
    g.add_edge(START, "a")
    out = g.compile().invoke({"log": ["in"], "flags": {"x": True}, "last": ""})
    assert out == {
        "log": ["in", "a", "b"],
        "flags": {"x": True, "a": True, "b": False},
        "last": "b",
    }
    assert isinstance(seen[0], dict)


def test_reducer_key_starts_from_empty_value() -> None:
    g = StateGraph(TD)
    g.add_node("a", lambda s: {"log": ["a"], "flags": {"a": True}})
    g.add_edge(START, "a")
    assert g.compile().invoke({"last": "x"}) == {"log": ["a"], "flags": {"a": True}, "last": "x"}


def test_node_sees_only_state_keys() -> None:
    seen: list[Any] = []
    g = StateGraph(TD)
    g.add_node("a", lambda s: seen.append(dict(s)))
    g.add_edge(START, "a")
    g.compile().invoke({"last": "x"})
    assert seen == [{"log": [], "flags": {}, "last": "x"}]


# -- dataclass -------------------------------------------------------------------------------------


@dataclasses.dataclass
class DC:
    name: str
    count: int = 0
    log: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)


def test_dataclass_state() -> None:
    seen: list[Any] = []

    def bump(state: DC) -> dict[str, Any]:
        seen.append(state)
        return {"count": state.count + 1, "log": [f"bump:{state.name}"]}

    g = StateGraph(DC)
    g.add_node("bump", bump)
    g.add_node("again", bump)
    g.add_edge(START, "bump")
    g.add_edge("bump", "again")
    out = g.compile().invoke({"name": "n"})
    assert out == {"name": "n", "count": 2, "log": ["bump:n", "bump:n"]}
    assert all(isinstance(s, DC) for s in seen)
    assert seen[1].count == 1


def test_dataclass_state_with_interrupt_and_checkpointer() -> None:
    def ask(state: DC) -> dict[str, Any]:
        return {"name": interrupt(f"rename {state.name}?")}

    g = StateGraph(DC)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    graph = g.compile(checkpointer=InMemorySaver())
    out = graph.invoke({"name": "old"}, cfg())
    assert out["__interrupt__"][0].value == "rename old?"
    assert graph.invoke(Command(resume="new"), cfg())["name"] == "new"
    # as in LangGraph: a default that was never written is not part of the stored values
    assert graph.get_state(cfg()).values == {"name": "new", "log": []}


# -- pydantic v2 -----------------------------------------------------------------------------------


class PM(pydantic.BaseModel):
    topic: str
    score: float = 0.0
    notes: Annotated[list[str], operator.add] = pydantic.Field(default_factory=list)


def test_pydantic_state() -> None:
    seen: list[Any] = []

    def grade(state: PM) -> dict[str, Any]:
        seen.append(state)
        return {"score": state.score + 0.5, "notes": [f"graded {state.topic}"]}

    g = StateGraph(PM)
    g.add_node("grade", grade)
    g.add_node("regrade", grade)
    g.add_edge(START, "grade")
    g.add_edge("grade", "regrade")
    graph = g.compile(checkpointer=InMemorySaver())
    out = graph.invoke({"topic": "t"}, cfg())
    assert out == {"topic": "t", "score": 1.0, "notes": ["graded t", "graded t"]}
    assert all(isinstance(s, PM) for s in seen)
    assert graph.get_state(cfg()).values["score"] == 1.0


def test_pydantic_state_validates_node_input() -> None:
    g = StateGraph(PM)
    g.add_node("grade", lambda s: {"score": 1})
    g.add_edge(START, "grade")
    with pytest.raises(pydantic.ValidationError):
        g.compile().invoke({"score": 2.0})  # topic is required


def test_node_may_return_a_state_object() -> None:
    g = StateGraph(PM)
    g.add_node("grade", lambda s: PM(topic=s.topic, score=9.0))
    g.add_edge(START, "grade")
    assert g.compile().invoke({"topic": "t"})["score"] == 9.0


# -- what a node may return ------------------------------------------------------------------------


def test_unknown_keys_are_dropped_with_a_warning() -> None:
    g = StateGraph(TD)
    g.add_node("typo_node", lambda s: {"last": "v", "lsat_typo": 1})
    g.add_edge(START, "typo_node")
    with pytest.warns(UnknownStateKeyWarning, match="lsat_typo"):
        events = list(g.compile().stream({"last": ""}))
    assert events == [{"typo_node": {"last": "v"}}]


def test_only_unknown_keys_give_a_none_update() -> None:
    g = StateGraph(TD)
    g.add_node("only_typo", lambda s: {"zzz_only": 1})
    g.add_edge(START, "only_typo")
    with pytest.warns(UnknownStateKeyWarning, match="zzz_only"):
        events = list(g.compile().stream({"last": ""}))
    assert events == [{"only_typo": None}]


def test_unknown_input_keys_are_dropped_with_a_warning() -> None:
    g = StateGraph(TD)
    g.add_node("a", lambda s: None)
    g.add_edge(START, "a")
    with pytest.warns(UnknownStateKeyWarning, match="bogus_input_key"):
        out = g.compile().invoke({"last": "x", "bogus_input_key": 1})
    assert out == {"last": "x", "log": [], "flags": {}}


def test_known_keys_give_no_warning() -> None:
    g = StateGraph(TD)
    g.add_node("a", lambda s: {"last": "y"})
    g.add_edge(START, "a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert g.compile().invoke({"last": "x"})["last"] == "y"


@pytest.mark.parametrize("bad", ["a string", 42, ["k"]])
def test_non_dict_return_is_invalid(bad: Any) -> None:
    g = StateGraph(TD)
    g.add_node("bad", lambda s: bad)
    g.add_edge(START, "bad")
    with pytest.raises(InvalidUpdateError, match="'bad'"):
        g.compile().invoke({"last": ""})


def test_unsupported_schema_is_rejected() -> None:
    from hitl_async import GraphValidationError

    class Opaque:  # neither keyed (TypedDict, dataclass, pydantic) nor a single value type
        pass

    with pytest.raises(GraphValidationError, match="not supported"):
        StateGraph(Opaque)
