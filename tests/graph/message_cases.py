"""Inputs for comparing `add_messages` with LangGraph's on the same values.

Runs under hitl-async's tests and, to make the golden file, under a Python with LangGraph:

    /work/lgvenv/bin/python tests/graph/message_cases.py > tests/graph/golden/add_messages.json

Each case builds fresh messages (add_messages assigns ids in place) and records the result as
plain data: every message's type and fields, with generated ids replaced by "<uuid4>".
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

Case = Callable[[Any, str], Any]


def _human(text: str, id: str | None = None) -> HumanMessage:
    return HumanMessage(content=text, id=id)


CASES: dict[str, Case] = {
    "append one": lambda add, _: add([_human("Hello", "1")], AIMessage("Hi there!", id="2")),
    "append several": lambda add, _: add(
        [_human("Hello", "1")], [AIMessage("Hi", id="2"), SystemMessage("Sys", id="3")]
    ),
    "replace by id": lambda add, _: add([_human("Hello", "1")], _human("Hello again", "1")),
    "ids assigned": lambda add, _: add([_human("Hello")], [AIMessage("Hi there!")]),
    "duplicate ids in the update": lambda add, _: add(
        [], [AIMessage("Hi", id="1"), AIMessage("Hi again", id="1")]
    ),
    "remove then re-add": lambda add, _: add(
        [AIMessage("Hello!", id="1")],
        [RemoveMessage(id="1"), AIMessage("Hi", id="1"), AIMessage("Hi again", id="1")],
    ),
    "remove one": lambda add, _: add(
        [_human("Hello", "1"), AIMessage("Hi", id="2")], RemoveMessage(id="2")
    ),
    "remove twice": lambda add, _: add(
        [_human("Hello", "1"), AIMessage("Hi", id="2")], [RemoveMessage(id="2")] * 2
    ),
    "remove unknown id": lambda add, _: add([_human("Hello", "1")], RemoveMessage(id="2")),
    "mixed": lambda add, _: add(
        [_human("Hello", "1"), AIMessage("Hi", id="2")],
        [_human("Updated", "1"), RemoveMessage(id="2"), SystemMessage("New", id="3")],
    ),
    "empty both": lambda add, _: add([], []),
    "empty right": lambda add, _: add([_human("Hello", "1")], []),
    "single values": lambda add, _: add(_human("Hello", "1"), AIMessage("Hi", id="2")),
    "remove all": lambda add, remove_all: add(
        [_human("Hello"), AIMessage("Hi")], [RemoveMessage(id=remove_all)]
    ),
    "remove all then add": lambda add, remove_all: add(
        [_human("Hello"), AIMessage("Hi")],
        [_human("before"), RemoveMessage(id=remove_all), _human("after", "9")],
    ),
    "coerce tuples, dicts, strings": lambda add, _: add(
        [("user", "meow")],
        [
            ("assistant", "purr"),
            {"role": "system", "content": "be brief"},
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
            "a plain string",
            ("human", "hi"),
            ("ai", "hello"),
        ],
    ),
    "coerce chunks": lambda add, _: add(
        [], [AIMessageChunk(content="partial", id="c"), AIMessageChunk(content="x")]
    ),
    "tool calls and tool messages": lambda add, _: add(
        [
            AIMessage(
                "",
                id="a",
                tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "call_1"}],
                usage_metadata={"input_tokens": 3, "output_tokens": 5, "total_tokens": 8},
            )
        ],
        [ToolMessage("found", tool_call_id="call_1", id="t", status="error")],
    ),
    "format openai": lambda add, _: add(format="langchain-openai")(
        [("user", "meow")],
        [
            HumanMessage(
                content=[
                    {"type": "text", "text": "Here's an image:", "cache_control": {"type": "x"}},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": "1234"},
                    },
                ],
                id="h",
            ),
            AIMessage(
                content=[{"type": "tool_use", "name": "foo", "input": {"bar": "baz"}, "id": "1"}],
                id="a",
            ),
        ],
    ),
    "unknown format": lambda add, _: add(format="xml")([_human("a", "1")], [_human("b", "2")]),
    "only left": lambda add, _: add([_human("a", "1")], None),
}


def _plain(message: Any) -> dict[str, Any]:
    data = message.model_dump()
    if data.get("id") and _is_uuid4(data["id"]):
        data["id"] = "<uuid4>"
    return {"class": type(message).__name__, **data}


def _is_uuid4(text: str) -> bool:
    try:
        return uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text
    except ValueError:
        return False


def run_all(add_messages: Any, remove_all: str) -> dict[str, Any]:
    """Every case's result (messages as plain data) or its error (type and message)."""
    out: dict[str, Any] = {}
    for name, case in CASES.items():
        try:
            result = case(add_messages, remove_all)
        except Exception as exc:
            out[name] = {"error": type(exc).__name__, "message": str(exc)}
        else:
            out[name] = [_plain(m) for m in result]
    return out


if __name__ == "__main__":
    from importlib.metadata import version

    from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages

    results = run_all(add_messages, REMOVE_ALL_MESSAGES)
    versions = {p: version(p) for p in ("langgraph", "langchain-core")}
    json.dump({"versions": versions, "results": results}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
