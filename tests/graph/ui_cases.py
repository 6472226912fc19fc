"""Graphs pushing generative-UI messages, for comparing `hitl_async.graph.ui` with
`langgraph.graph.ui` on the same graphs. Runs under hitl-async's tests and, to make the golden
file, under a Python with LangGraph:

    /work/lgvenv/bin/python tests/graph/ui_cases.py > tests/graph/golden/ui.json

Each case records its stream (`stream_mode=["custom", "values", "updates"]`) or result as plain
data; messages become {"msg": content, "id": id}, generated UUIDs "<uuid4>".
"""

# No `from __future__ import annotations`: the states below are annotated with local names.

import asyncio
import json
import operator
import sys
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage
from typing_extensions import TypedDict

MODES = ["custom", "values", "updates"]


def make_cases(names: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Cases built from the framework's names (StateGraph, START, add_messages, the ui ones)."""
    StateGraph, START, add_messages = names["StateGraph"], names["START"], names["add_messages"]
    push, delete = names["push_ui_message"], names["delete_ui_message"]
    reducer, AnyUIMessage = names["ui_message_reducer"], names["AnyUIMessage"]

    class State(TypedDict, total=False):
        messages: Annotated[list[AnyMessage], add_messages]
        ui: Annotated[list[AnyUIMessage], reducer]
        count: Annotated[int, operator.add]

    class NoUI(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    def first(state: Any) -> Any:
        msg = AIMessage("weather", id="m1")
        push("card", {"city": "Oslo", "temp": 1}, id="u1", message=msg)
        push("spinner", {}, id="u2", metadata={"k": "v"})
        return {"messages": [msg]}

    def second(state: Any) -> Any:
        push("card", {"temp": 2}, id="u1", merge=True)
        delete("u2")
        push("streamed only", {"a": 1}, id="u3", state_key=None)
        return {"messages": [AIMessage("done", id="m2")]}

    async def async_node(state: Any) -> Any:
        push("card", {"n": 1}, id="a1", message={"id": "m-dict", "content": "x"})
        await asyncio.sleep(0)
        return {"count": 1}

    def generated_id(state: Any) -> Any:
        push("card", {}, message=AIMessage("no id"))
        return None

    def left(state: Any) -> Any:
        push("left", {}, id="l")
        return {"count": 1}

    def right(state: Any) -> Any:
        push("right", {}, id="r")
        return {"count": 1}

    def graph(state: Any, *chain: Callable[..., Any]) -> Any:
        builder = StateGraph(state)
        previous = START
        for fn in chain:
            builder.add_node(fn.__name__, fn)
            builder.add_edge(previous, fn.__name__)
            previous = fn.__name__
        return builder.compile()

    def stream(app: Any, config: Any = None) -> list[Any]:
        return [plain(c) for c in app.stream({"messages": []}, config, stream_mode=MODES)]

    async def astream(app: Any) -> list[Any]:
        return [plain(c) async for c in app.astream({"messages": []}, stream_mode=MODES)]

    def parallel() -> Any:
        builder = StateGraph(State)
        builder.add_node("left", left)
        builder.add_node("right", right)
        builder.add_edge(START, "left")
        builder.add_edge(START, "right")
        chunks = stream(builder.compile())
        custom = sorted(json.dumps(c, sort_keys=True) for mode, c in chunks if mode == "custom")
        return {"custom": custom, "final": [c for mode, c in chunks if mode == "values"][-1]}

    def ui(id: str, **props: Any) -> dict[str, Any]:
        return {"type": "ui", "id": id, "name": "c", "props": props, "metadata": {}}

    def merging(id: str, **props: Any) -> dict[str, Any]:
        return {"type": "ui", "id": id, "name": "c", "props": props, "metadata": {"merge": True}}

    def remove(id: str) -> dict[str, Any]:
        return {"type": "remove-ui", "id": id}

    return {
        "two nodes: push, merge, delete, stream only": lambda: stream(
            graph(State, first, second), {"run_name": "mine", "tags": ["t1"], "run_id": None}
        ),
        "async node, message given as a dict": lambda: asyncio.run(
            astream(graph(State, async_node))
        ),
        "generated id": lambda: stream(graph(State, generated_id)),
        "parallel nodes": parallel,
        "state without a ui key": lambda: plain(
            graph(NoUI, first).invoke({"messages": []})  # ui writes are dropped
        ),
        "reducer: append, replace in place, single values": lambda: (
            reducer([ui("1", a=1), ui("2", b=1)], [ui("1", a=2), ui("3")])
            + reducer(ui("x"), ui("y"))
        ),
        "reducer: merge props": lambda: reducer([ui("1", a=1, b=1)], merging("1", b=2, c=3)),
        "reducer: remove": lambda: reducer([ui("1"), ui("2")], [remove("1")]),
        "reducer: remove then add again in one batch": lambda: reducer(
            [ui("1", a=1)], [remove("1"), ui("1", a=2)]
        ),
        "reducer: add then remove in one batch": lambda: reducer([], [ui("1"), remove("1")]),
        "reducer: remove an unknown id": lambda: reducer([ui("1")], remove("2")),
    }


def plain(value: Any) -> Any:
    """JSON-able data: messages as {"msg", "id"}, generated UUIDs as "<uuid4>"."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "content"):
        return {"msg": value.content, "id": plain(value.id)}
    if isinstance(value, str) and _is_uuid4(value):
        return "<uuid4>"
    return value


def _is_uuid4(text: str) -> bool:
    try:
        return uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text
    except ValueError:
        return False


def run_all(names: dict[str, Any]) -> dict[str, Any]:
    """Every case's result as plain data, or its error (type and first line)."""
    out: dict[str, Any] = {}
    for name, case in make_cases(names).items():
        try:
            out[name] = plain(case())
        except Exception as exc:
            out[name] = {"error": type(exc).__name__, "message": str(exc).splitlines()[0]}
    return out


if __name__ == "__main__":
    import logging
    from importlib.metadata import version

    from langgraph.graph import START, StateGraph, add_messages
    from langgraph.graph import ui as lg_ui

    logging.disable(logging.WARNING)  # LangGraph logs the dropped writes of "state without ui"
    names = dict(StateGraph=StateGraph, START=START, add_messages=add_messages, **vars(lg_ui))
    versions = {p: version(p) for p in ("langgraph", "langchain-core")}
    json.dump(
        {"versions": versions, "results": run_all(names)},
        sys.stdout,
        indent=1,
        sort_keys=True,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")
