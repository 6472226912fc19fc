"""ToolNode inputs for comparing hitl-async's `ToolNode` with LangGraph's on the same values.

Each case runs a one-node graph (START -> tools) on a state whose last AI message holds the
tool calls, and records the final state as plain data (or the error). Runs under hitl-async's
tests and, to make the golden file, under a Python with LangGraph:

    /work/lgvenv/bin/python tests/prebuilt/tool_node_cases.py > tests/prebuilt/golden/tool_node.json
"""

# No `from __future__ import annotations`: the tools below are annotated with local names.

import asyncio
import json
import operator
import sys
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from typing_extensions import TypedDict


@tool
def add(a: int, b: int) -> str:
    """Add two numbers; refuses zero."""
    if a == 0:
        raise ValueError("a must not be zero")
    return f"{a} + {b} = {a + b}"


@tool
def rows(n: int) -> list[dict[str, Any]]:
    """Rows as plain dicts (sent to the model as JSON)."""
    return [{"row": i, "name": f"é{i}"} for i in range(n)]


@tool
def picture(url: str) -> list[dict[str, Any]]:
    """Content blocks (sent as they are)."""
    return [{"type": "image_url", "image_url": {"url": url}}]


@tool
def typed_fail(kind: str) -> str:
    """Raises the named exception."""
    raise {"type": TypeError, "value": ValueError, "key": KeyError}[kind]("boom")


def make_cases(names: dict[str, Any]) -> dict[str, Any]:
    """Cases built from the framework's names (StateGraph, START, ToolNode, Command, ...)."""
    StateGraph, START = names["StateGraph"], names["START"]
    ToolNode, Command = names["ToolNode"], names["Command"]
    InjectedState, add_messages = names["InjectedState"], names["add_messages"]
    ToolRuntime, InMemoryStore = names["ToolRuntime"], names["InMemoryStore"]

    class State(TypedDict, total=False):
        messages: Annotated[list[AnyMessage], add_messages]
        note: str
        count: Annotated[int, operator.add]

    @tool
    def whoami(
        question: str,
        state: Annotated[dict[str, Any], InjectedState],
        note: Annotated[str, InjectedState("note")],
        call_id: Annotated[str, InjectedToolCallId],
    ) -> str:
        """Reads the graph state and its own call id."""
        return f"{question}: {len(state['messages'])} messages, note={note}, call={call_id}"

    @tool
    def bump(by: int, call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Updates another state key through a Command."""
        message = ToolMessage(f"bumped by {by}", tool_call_id=call_id, name="bump")
        return Command(update={"messages": [message], "count": by})

    @tool
    def inspect_runtime(topic: str, runtime: ToolRuntime) -> str:
        """Reports what its runtime holds (the model sees only `topic`)."""
        runtime.stream_writer({"topic": topic})
        state = runtime.state
        return json.dumps(
            {
                "topic": topic,
                "runtime": type(runtime).__name__,
                "state_keys": sorted(state) if isinstance(state, dict) else type(state).__name__,
                "note": state.get("note") if isinstance(state, dict) else None,
                "context": runtime.context,
                "call": runtime.tool_call_id,
                "store": type(runtime.store).__name__,
                "tools": [t.name for t in runtime.tools],
                "node": runtime.config.get("metadata", {}).get("langgraph_node"),
            }
        )

    @tool
    def remember(value: str, runtime: ToolRuntime) -> str:
        """Stores a value in the graph's store and reads it back."""
        runtime.store.put(("notes",), runtime.tool_call_id, {"value": value})
        return str(runtime.store.get(("notes",), runtime.tool_call_id).value)

    @tool
    def untyped_runtime(x: int, runtime) -> str:  # type: ignore[no-untyped-def]
        """A parameter named `runtime` is injected whatever its annotation."""
        return f"{x} {type(runtime).__name__}"

    flaky_attempts: list[int] = []

    @tool
    def flaky(x: int) -> str:
        """Fails every other call."""
        flaky_attempts.append(x)
        if len(flaky_attempts) % 2 == 1:
            raise ValueError(f"fail {x}")
        return f"ok {x}"

    def retry(request: Any, execute: Any) -> Any:
        for _ in range(3):
            try:
                return execute(request)
            except ValueError:
                continue
        return ToolMessage("gave up", tool_call_id=request.tool_call["id"])

    def rewrite(request: Any, execute: Any) -> Any:
        """Answers unknown tools itself; adds 100 to x and swaps the state for the rest."""
        if request.tool is None:
            name = request.tool_call["name"]
            return ToolMessage(f"short-circuit {name}", tool_call_id=request.tool_call["id"])
        call = {**request.tool_call, "args": {"topic": request.tool_call["args"]["topic"] + "!"}}
        return execute(request.override(tool_call=call, state={"note": "swapped"}))

    async def arewrite(request: Any, execute: Any) -> Any:
        call = {**request.tool_call, "args": {"topic": "async"}}
        return await execute(request.override(tool_call=call))

    def broken(request: Any, execute: Any) -> Any:
        raise RuntimeError("wrapper broke")

    def calls(*items: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"name": n, "args": a, "id": f"call-{i}"} for i, (n, a) in enumerate(items)]

    def run(
        tools: list[Any],
        tool_calls: list[dict[str, Any]],
        context: Any = None,
        store: Any = None,
        run_async: bool = False,
        **options: Any,
    ) -> Any:
        builder = StateGraph(State)
        builder.add_node("tools", ToolNode(tools, **options))
        builder.add_edge(START, "tools")
        state = {
            "messages": [AIMessage("", id="ai", tool_calls=tool_calls)],
            "note": "hello",
            "count": 1,
        }
        graph = builder.compile(store=store)
        if run_async:
            return asyncio.run(graph.ainvoke(state, context=context))
        return graph.invoke(state, context=context)

    def handle_value(e: ValueError) -> str:
        return f"handled {type(e).__name__}: {e}"

    return {
        "one call": lambda: run([add], calls(("add", {"a": 1, "b": 2}))),
        "parallel calls keep their order": lambda: run(
            [add, rows],
            calls(("rows", {"n": 2}), ("add", {"a": 3, "b": 4}), ("add", {"a": 5, "b": 6})),
        ),
        "json and utf-8 output": lambda: run([rows], calls(("rows", {"n": 2}))),
        "content blocks output": lambda: run([picture], calls(("picture", {"url": "x"}))),
        "bad arguments go back to the model": lambda: run([add], calls(("add", {"a": "x"}))),
        "tool errors raise by default": lambda: run([add], calls(("add", {"a": 0, "b": 1}))),
        "handle_tool_errors=True": lambda: run(
            [add], calls(("add", {"a": 0, "b": 1})), handle_tool_errors=True
        ),
        "handle_tool_errors=str": lambda: run(
            [add], calls(("add", {"a": 0, "b": 1})), handle_tool_errors="try again"
        ),
        "handle_tool_errors=typed callable, handled": lambda: run(
            [typed_fail], calls(("typed_fail", {"kind": "value"})), handle_tool_errors=handle_value
        ),
        "handle_tool_errors=typed callable, not handled": lambda: run(
            [typed_fail], calls(("typed_fail", {"kind": "type"})), handle_tool_errors=handle_value
        ),
        "handle_tool_errors=tuple": lambda: run(
            [typed_fail], calls(("typed_fail", {"kind": "key"})), handle_tool_errors=(KeyError,)
        ),
        "handle_tool_errors=False with bad arguments": lambda: run(
            [add], calls(("add", {"a": "x"})), handle_tool_errors=False
        ),
        "unknown tool name": lambda: run([add], calls(("nope", {"a": 1}))),
        "injected state, field and call id": lambda: run(
            [whoami], calls(("whoami", {"question": "who"}))
        ),
        "tool returning a Command": lambda: run(
            [bump, add], calls(("bump", {"by": 5}), ("add", {"a": 1, "b": 1}))
        ),
        "ToolRuntime is injected and hidden from the model": lambda: {
            "schema": sorted(inspect_runtime.tool_call_schema.model_json_schema()["properties"]),
            **run(
                [inspect_runtime, add],
                calls(("inspect_runtime", {"topic": "t"}), ("inspect_runtime", {"topic": "u"})),
                context={"user": "ann"},
                store=InMemoryStore(),
            ),
        },
        "ToolRuntime without a store or context": lambda: run(
            [inspect_runtime], calls(("inspect_runtime", {"topic": "t"}))
        ),
        "ToolRuntime: a runtime the model made up is replaced": lambda: run(
            [inspect_runtime],
            calls(("inspect_runtime", {"topic": "t", "runtime": {"state": "forged"}})),
            context="ctx",
        ),
        "ToolRuntime store": lambda: run(
            [remember], calls(("remember", {"value": "v"})), store=InMemoryStore()
        ),
        "wrap_tool_call retries": lambda: run(
            [flaky], calls(("flaky", {"x": 1})), wrap_tool_call=retry
        ),
        "wrap_tool_call rewrites the call and state, answers unknown tools": lambda: run(
            [inspect_runtime],
            calls(("inspect_runtime", {"topic": "t"}), ("nope", {})),
            wrap_tool_call=rewrite,
        ),
        "awrap_tool_call (async run)": lambda: run(
            [inspect_runtime],
            calls(("inspect_runtime", {"topic": "t"})),
            awrap_tool_call=arewrite,
            run_async=True,
        ),
        "wrap_tool_call (async run)": lambda: run(
            [inspect_runtime],
            calls(("inspect_runtime", {"topic": "t"})),
            wrap_tool_call=rewrite,
            run_async=True,
        ),
        "a wrapper's error, default handling": lambda: run(
            [add], calls(("add", {"a": 1, "b": 2})), wrap_tool_call=broken
        ),
        "a wrapper's error, handle_tool_errors=str": lambda: run(
            [add], calls(("add", {"a": 1, "b": 2})), wrap_tool_call=broken, handle_tool_errors="no"
        ),
        "a wrapper's error, handle_tool_errors=tuple of others": lambda: run(
            [add],
            calls(("add", {"a": 1, "b": 2})),
            wrap_tool_call=broken,
            handle_tool_errors=(KeyError,),
        ),
        "a parameter named runtime": lambda: {
            "schema": sorted(untyped_runtime.tool_call_schema.model_json_schema()["properties"]),
            **run([untyped_runtime], calls(("untyped_runtime", {"x": 1, "runtime": None}))),
        },
    }


def plain(result: Any) -> Any:
    out: dict[str, Any] = {}
    for key, value in sorted(result.items()):
        if key == "messages":
            out[key] = [
                {
                    "class": type(m).__name__,
                    "content": m.content,
                    "name": getattr(m, "name", None),
                    "tool_call_id": getattr(m, "tool_call_id", None),
                    "status": getattr(m, "status", None),
                }
                for m in value
            ]
        else:
            out[key] = value
    return out


def run_all(names: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, case in make_cases(names).items():
        try:
            out[name] = plain(case())
        except Exception as exc:
            out[name] = {"error": type(exc).__name__, "message": str(exc).splitlines()[0]}
    return out


if __name__ == "__main__":
    from importlib.metadata import version

    from langgraph.graph import START, StateGraph, add_messages
    from langgraph.prebuilt import InjectedState, ToolNode, ToolRuntime
    from langgraph.store.memory import InMemoryStore
    from langgraph.types import Command

    names = dict(
        StateGraph=StateGraph,
        START=START,
        ToolNode=ToolNode,
        Command=Command,
        InjectedState=InjectedState,
        add_messages=add_messages,
        ToolRuntime=ToolRuntime,
        InMemoryStore=InMemoryStore,
    )
    versions = {p: version(p) for p in ("langgraph", "langgraph-prebuilt", "langchain-core")}
    json.dump(
        {"versions": versions, "results": run_all(names)},
        sys.stdout,
        indent=1,
        sort_keys=True,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")
