"""`add_messages` and `MessagesState` (`hitl_async.graph.message`), mirroring LangGraph's: the
same results as LangGraph 1.2.22 on the same inputs, LangGraph's own cases restated, and message
state stored on every driver with no registration."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from message_cases import run_all
from pydantic import BaseModel
from typing_extensions import TypedDict

from hitl_async import Command, interrupt
from hitl_async.graph import END, START, MessagesState, StateGraph, add_messages
from hitl_async.graph.message import REMOVE_ALL_MESSAGES
from hitl_async.serde import Serializer

GOLDEN = Path(__file__).parent / "golden" / "add_messages.json"


def test_same_results_as_langgraph_on_the_same_inputs() -> None:
    golden = json.loads(GOLDEN.read_text())
    ours = run_all(add_messages, REMOVE_ALL_MESSAGES)
    assert set(ours) == set(golden["results"])
    for name, expected in golden["results"].items():
        assert ours[name] == expected, name


# -- LangGraph's test_messages_state cases, restated ------------------------------------------


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_a_single_message_or_a_list_is_appended() -> None:
    first = [HumanMessage("Hello", id="1")]
    assert add_messages(first, AIMessage("Hi", id="2")) == [
        HumanMessage("Hello", id="1"),
        AIMessage("Hi", id="2"),
    ]
    more = add_messages(first, [AIMessage("Hi", id="2"), SystemMessage("S", id="3")])
    assert ids(more) == ["1", "2", "3"]
    assert add_messages(HumanMessage("a", id="1"), AIMessage("b", id="2")) == [
        HumanMessage("a", id="1"),
        AIMessage("b", id="2"),
    ]


def test_a_message_with_a_known_id_replaces_it_in_place() -> None:
    left = [HumanMessage("Hello", id="1"), AIMessage("Hi", id="2")]
    merged = add_messages(left, [HumanMessage("Hello again", id="1")])
    assert [m.content for m in merged] == ["Hello again", "Hi"]
    last_wins = add_messages([], [AIMessage("a", id="1"), AIMessage("b", id="1")])
    assert [(m.id, m.content) for m in last_wins] == [("1", "b")]


def test_messages_without_ids_get_uuid4_ids() -> None:
    merged = add_messages([HumanMessage("Hello")], [AIMessage("Hi")])
    assert len(merged) == 2
    assert all(uuid.UUID(m.id).version == 4 for m in merged)


def test_remove_message_deletes_and_unknown_ids_are_errors() -> None:
    left = [HumanMessage("Hello", id="1"), AIMessage("Hi", id="2")]
    assert ids(add_messages(left, RemoveMessage(id="2"))) == ["1"]
    assert ids(add_messages(left, [RemoveMessage(id="2"), RemoveMessage(id="2")])) == ["1"]
    assert add_messages(left, [RemoveMessage(id="1"), RemoveMessage(id="2")]) == []
    readded = add_messages(
        [AIMessage("Hello!", id="1")], [RemoveMessage(id="1"), AIMessage("back", id="1")]
    )
    assert [(m.id, m.content) for m in readded] == [("1", "back")]
    with pytest.raises(ValueError, match="delete a message with an ID that doesn't exist"):
        add_messages([HumanMessage("Hello", id="1")], RemoveMessage(id="2"))


def test_remove_all_keeps_only_what_follows_it() -> None:
    left = [HumanMessage("Hello"), AIMessage("Hi")]
    assert add_messages(left, [RemoveMessage(id=REMOVE_ALL_MESSAGES)]) == []
    after = add_messages(
        [HumanMessage("Hello")],
        [HumanMessage("gone"), RemoveMessage(id=REMOVE_ALL_MESSAGES), HumanMessage("kept")],
    )
    assert [m.content for m in after] == ["kept"]


def test_called_with_format_only_returns_the_reducer() -> None:
    reducer = add_messages(format="langchain-openai")
    out = reducer([], [{"role": "user", "content": "hi"}])
    assert isinstance(out[0], HumanMessage) and out[0].content == "hi"
    with pytest.raises(ValueError, match="non-null arguments for both 'left' and 'right'"):
        add_messages([HumanMessage("a")], None)


class PydanticMessages(BaseModel):
    messages: Annotated[list[AnyMessage], add_messages]


@pytest.mark.parametrize("schema", [MessagesState, PydanticMessages], ids=["typeddict", "pydantic"])
def test_messages_state_coerces_input_and_appends_node_output(schema: Any) -> None:
    def foo(state: Any) -> dict[str, Any]:
        return {"messages": [HumanMessage("foo")]}

    builder = StateGraph(schema)
    builder.add_node(foo)
    builder.add_edge(START, "foo")
    builder.add_edge("foo", END)
    out = builder.compile().invoke({"messages": [("user", "meow")]})
    assert [(type(m), m.content) for m in out["messages"]] == [
        (HumanMessage, "meow"),
        (HumanMessage, "foo"),
    ]
    assert all(m.id for m in out["messages"])


def test_openai_format_in_a_graph() -> None:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages(format="langchain-openai")]

    def foo(state: State) -> dict[str, Any]:
        return {
            "messages": [
                AIMessage(content=[{"type": "tool_use", "name": "f", "input": {}, "id": "1"}]),
                HumanMessage(
                    content=[{"type": "tool_result", "tool_use_id": "1", "content": "done"}]
                ),
            ]
        }

    builder = StateGraph(State)
    builder.add_node(foo)
    builder.add_edge(START, "foo")
    out = builder.compile().invoke({"messages": [("user", "meow")]})
    kinds = [type(m) for m in out["messages"]]
    assert kinds == [HumanMessage, AIMessage, ToolMessage]
    assert out["messages"][1].tool_calls[0]["name"] == "f"
    assert out["messages"][2].tool_call_id == "1"


# -- message state on every driver --------------------------------------------------------------


def chat_graph(saver: Any) -> Any:
    def model(state: MessagesState) -> dict[str, Any]:
        return {
            "messages": [
                AIMessage(
                    "",
                    id="ai-1",
                    tool_calls=[{"name": "refund", "args": {"amount": 5.5}, "id": "call_1"}],
                    invalid_tool_calls=[
                        {"name": "bad", "args": "{oops", "id": "call_2", "error": "bad json"}
                    ],
                    usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
                    response_metadata={"model_name": "scripted"},
                )
            ]
        }

    def review(state: MessagesState) -> dict[str, Any]:
        answer = interrupt({"tool_calls": state["messages"][-1].tool_calls})
        return {
            "messages": [
                ToolMessage(
                    content=[{"type": "text", "text": f"refunded: {answer}"}],
                    tool_call_id="call_1",
                    id="tool-1",
                    artifact={"receipt": ("r", 1)},
                )
            ]
        }

    builder = StateGraph(MessagesState)
    builder.add_node(model)
    builder.add_node(review)
    builder.add_edge(START, "model")
    builder.add_edge("model", "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=saver)


@pytest.mark.anyio
async def test_message_state_is_stored_and_loaded_on_every_driver(saver: Any) -> None:
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": f"chat-{uuid.uuid4().hex[:8]}"}}
    paused = await graph.ainvoke({"messages": [("user", "refund me")]}, config)
    assert paused["__interrupt__"][0].value["tool_calls"][0]["args"] == {"amount": 5.5}
    state = await graph.aget_state(config)
    human, ai = state.values["messages"]
    assert isinstance(human, HumanMessage) and human.content == "refund me"
    assert ai.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert ai.invalid_tool_calls[0]["error"] == "bad json"
    done = await graph.ainvoke(Command(resume="yes"), config)
    tool = done["messages"][-1]
    assert isinstance(tool, ToolMessage)
    assert tool.content == [{"type": "text", "text": "refunded: yes"}]
    assert tool.artifact == {"receipt": ("r", 1)}
    history = [s async for s in graph.aget_state_history(config)]
    assert len(history[0].values["messages"]) == 3


def test_messages_load_with_a_fresh_serializer_and_no_registration() -> None:
    """In a new process that registers nothing and never imported a graph."""
    code = (
        "import sys\n"
        "from hitl_async.serde import Serializer\n"
        "assert 'langchain_core' not in sys.modules\n"
        "value = Serializer().loads(sys.stdin.buffer.read())\n"
        "print([type(m).__name__ for m in value], value[1].tool_calls[0]['id'])\n"
    )
    from langchain_core.messages import AIMessageChunk, ChatMessage, FunctionMessage

    value = [
        HumanMessage("hi"),
        AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c9"}]),
        AIMessageChunk("tok"),
        SystemMessage("s"),
        ChatMessage("c", role="critic"),
        FunctionMessage("f", name="fn"),
        RemoveMessage(id="x"),
    ]
    data = Serializer().dumps(value)
    done = subprocess.run(
        [sys.executable, "-c", code], input=data, capture_output=True, timeout=60, check=True
    )
    assert done.stdout.decode().strip() == (
        "['HumanMessage', 'AIMessage', 'AIMessageChunk', 'SystemMessage', 'ChatMessage', "
        "'FunctionMessage', 'RemoveMessage'] c9"
    )


def test_without_langchain_core_the_graph_package_imports_and_the_names_say_what_to_install() -> (
    None
):
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None  # as if not installed\n"
        "import hitl_async.graph\n"
        "from hitl_async.graph import StateGraph\n"
        "try:\n"
        "    from hitl_async.graph import add_messages\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'hitl-async[langchain]'" in done.stdout


def test_message_graph_keeps_one_list_of_messages_as_langgraph_does() -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from hitl_async.graph import END, START, MessageGraph

    with pytest.warns(DeprecationWarning, match="StateGraph\\(MessagesState\\)"):
        g = MessageGraph()
    g.add_node("a", lambda msgs: AIMessage("hi", id="a1"))
    g.add_node("b", lambda msgs: [AIMessage(f"n={len(msgs)}", id="b1")])
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    app = g.compile()
    out = app.invoke([HumanMessage("yo", id="h1")])
    assert [(type(m).__name__, m.content, m.id) for m in out] == [
        ("HumanMessage", "yo", "h1"),
        ("AIMessage", "hi", "a1"),
        ("AIMessage", "n=2", "b1"),
    ]
    first = next(iter(app.stream(("user", "hey"), stream_mode="updates")))
    assert first["a"].content == "hi"
