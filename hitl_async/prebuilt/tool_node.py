"""`ToolNode` and `tools_condition`, as in `langgraph.prebuilt`: run the tool calls of the last
AI message (in parallel), answer each with a `ToolMessage`, inject graph state, the store, the
tool call id and a `ToolRuntime` into tools that ask for them, and let tools return a `Command`.

Needs langchain-core (`pip install 'hitl-async[langchain]'`).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import types
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import Any, Literal, Union, cast

import anyio
from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool, InjectedToolArg, InjectedToolCallId
from langchain_core.tools import tool as create_tool
from langchain_core.tools.base import get_all_basemodel_annotations
from pydantic import ValidationError

from hitl_async._runtime import graph_state
from hitl_async.errors import GraphBubbleUp
from hitl_async.prebuilt.tool_call_request import (
    AsyncToolCallWrapper,
    ToolCallRequest,
    ToolCallWithContext,
    ToolCallWrapper,
)
from hitl_async.prebuilt.tool_output import CommandOutput, command_aware
from hitl_async.prebuilt.tool_runtime import ToolRuntime
from hitl_async.runtime import Runtime, get_runtime
from hitl_async.types import Command

__all__ = [
    "INVALID_TOOL_NAME_ERROR_TEMPLATE",
    "TOOL_CALL_ERROR_TEMPLATE",
    "InjectedState",
    "InjectedStore",
    "InjectedToolCallId",
    "ToolCallRequest",
    "ToolCallWithContext",
    "ToolInvocationError",
    "ToolNode",
    "ToolRuntime",
    "command_aware",
    "injected_arg_names",
    "msg_content_output",
    "tools_condition",
]

INVALID_TOOL_NAME_ERROR_TEMPLATE = (
    "Error: {requested_tool} is not a valid tool, try one of [{available_tools}]."
)
TOOL_CALL_ERROR_TEMPLATE = "Error: {error}\n Please fix your mistakes."
_INVOCATION_ERROR_TEMPLATE = (
    "Error invoking tool '{tool_name}' with kwargs {tool_kwargs} with error:\n"
    " {error}\n"
    " Please fix the error and try again."
)
_BLOCK_TYPES = ("text", "image_url", "image", "json", "search_result", "custom", "file")

ErrorHandling = bool | str | Callable[..., str] | type[Exception] | tuple[type[Exception], ...]


class InjectedState(InjectedToolArg):
    """Annotation of a tool argument filled with the graph state (or one key of it:
    `Annotated[list, InjectedState("messages")]`), hidden from the model."""

    def __init__(self, field: str | None = None) -> None:
        self.field = field


class InjectedStore(InjectedToolArg):
    """Annotation of a tool argument filled with the graph's store (`compile(store=...)`)."""


class ToolInvocationError(Exception):
    """A tool was called with arguments that do not fit its schema (the model's mistake:
    reported back to it as an error `ToolMessage` by default)."""

    def __init__(self, tool_name: str, source: ValidationError, tool_kwargs: dict[str, Any]):
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in source.errors()
        ]
        self.message = _INVOCATION_ERROR_TEMPLATE.format(
            tool_name=tool_name, tool_kwargs=tool_kwargs, error="\n".join(parts)
        )
        self.tool_name = tool_name
        self.tool_kwargs = tool_kwargs
        self.source = source
        super().__init__(self.message)


def msg_content_output(output: Any) -> str | list[dict[str, Any]]:
    """A tool's output as `ToolMessage` content: text and content blocks as they are, anything
    else as JSON (or its `str` when it is not JSON-able)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(
        isinstance(x, dict) and x.get("type") in _BLOCK_TYPES for x in output
    ):
        return output
    try:
        return json.dumps(output, ensure_ascii=False)
    except Exception:
        return str(output)


def _default_error_handling(error: Exception) -> str:
    """LangGraph's default: bad arguments go back to the model; other errors are raised."""
    if isinstance(error, ToolInvocationError):
        return error.message
    raise error


def _handled_types(handler: Callable[..., str]) -> tuple[type[Exception], ...]:
    """The exception types a handler's first parameter is annotated with (default: all)."""
    params = list(inspect.signature(handler).parameters.values())
    if not params:
        return (Exception,)
    first = params[1] if params[0].name in ("self", "cls") and len(params) == 2 else params[0]
    hints = typing.get_type_hints(handler)
    annotation = hints.get(first.name)
    if annotation is None:
        return (Exception,)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = typing.get_args(annotation)
    else:
        members = (annotation,)
    if not all(isinstance(m, type) and issubclass(m, Exception) for m in members):
        raise ValueError(
            "handle_tool_errors: annotate the handler's error parameter with Exception types, "
            f"e.g. `def handler(e: ValueError | TypeError) -> str`; got {annotation!r}"
        )
    return tuple(members)


@dataclass(slots=True)
class _Injected:
    """Which arguments of a tool are filled by the ToolNode rather than the model."""

    state: dict[str, str | None] = field(default_factory=dict)
    store: str | None = None
    call_id: str | None = None
    runtime: str | None = None
    optional_state: set[str] = field(default_factory=set)
    """State arguments with a default: left out when the state lacks their key."""
    hidden: set[str] = field(default_factory=set)
    """Every argument marked injected: what the model wrote for them is dropped."""

    @property
    def keys(self) -> set[str]:
        out = set(self.state) | self.hidden
        out.update(k for k in (self.store, self.call_id, self.runtime) if k is not None)
        return out


def _is_runtime_type(annotation: Any) -> bool:
    """`ToolRuntime`, `ToolRuntime[C, S]`, or either inside `Annotated`/`Optional`."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, ToolRuntime):
        return True
    if isinstance(origin, type) and issubclass(origin, ToolRuntime):
        return True
    if origin in (typing.Annotated, Union, types.UnionType):
        return any(_is_runtime_type(a) for a in typing.get_args(annotation))
    return False


def _annotations(tool: BaseTool) -> dict[str, Any]:
    """The tool's argument annotations: its function's, overridden by its input schema's."""
    func = getattr(tool, "func", None) or getattr(tool, "coroutine", None)
    try:
        found = typing.get_type_hints(func, include_extras=True) if func else {}
    except Exception:
        found = {}
    with contextlib.suppress(Exception):  # a tool whose schema cannot be built has none
        found.update(get_all_basemodel_annotations(tool.get_input_schema()))
    found.pop("return", None)
    return found


def _markers(annotation: Any) -> list[Any]:
    """The injection markers in an `Annotated[...]` (or an Optional/Union of one): instances,
    or instances of marker classes given bare (`Annotated[str, InjectedToolCallId]`)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _markers(arg)]
    if origin is not typing.Annotated:
        return []
    return [
        meta() if isinstance(meta, type) and issubclass(meta, InjectedToolArg) else meta
        for meta in annotation.__metadata__
    ]


def _optional_args(tool: BaseTool) -> set[str]:
    """The arguments of the tool's input schema that have a default."""
    try:
        fields = getattr(tool.get_input_schema(), "model_fields", {})
    except Exception:
        return set()
    return {name for name, info in fields.items() if not info.is_required()}


def _injected_args(tool: BaseTool) -> _Injected:
    found = _Injected()
    for name, annotation in _annotations(tool).items():
        if name == "runtime" or _is_runtime_type(annotation):
            found.runtime = name  # LangGraph injects a parameter named `runtime` whatever its type
        for marker in _markers(annotation):
            if isinstance(marker, InjectedToolArg):
                found.hidden.add(name)
            if isinstance(marker, InjectedState):
                found.state[name] = marker.field
            elif isinstance(marker, InjectedStore):
                found.store = name
            elif isinstance(marker, InjectedToolCallId):
                found.call_id = name
        if _is_runtime_type(annotation):
            found.hidden.add(name)
    if any(key is not None for key in found.state.values()):
        found.optional_state = _optional_args(tool) & set(found.state)
    return found


def injected_arg_names(tool: BaseTool) -> set[str]:
    """The arguments of `tool` a ToolNode fills (state, store, call id, runtime, any
    `InjectedToolArg`) rather than the model."""
    return _injected_args(tool).keys


InputType = Literal["list", "dict", "tool_calls"]


class ToolNode:
    """A node that runs the tool calls of the last AI message and returns their `ToolMessage`s.

    Input: the graph state (a dict or model with `messages_key`), a list of messages, a list of
    tool calls, or LangGraph's `{"__type": "tool_call_with_context", ...}` (one call and its
    state, what `create_react_agent` sends per call). Output: `{messages_key: [ToolMessage,
    ...]}` (a list for list input); when tools return `Command`s, one `Command` combining their
    updates and gotos. `handle_tool_errors` as in LangGraph: by default only argument errors go
    back to the model; True catches every error, a str is the message, a callable makes it (and
    its annotation selects the exception types), a type or tuple of types selects them.
    `wrap_tool_call` / `awrap_tool_call` intercept each call (see `ToolCallRequest`); an error
    a wrapper raises goes through `handle_tool_errors` too, whatever its type.
    """

    def __init__(
        self,
        tools: Sequence[BaseTool | Callable[..., Any]],
        *,
        name: str = "tools",
        tags: list[str] | None = None,
        handle_tool_errors: ErrorHandling = _default_error_handling,
        messages_key: str = "messages",
        wrap_tool_call: ToolCallWrapper | None = None,
        awrap_tool_call: AsyncToolCallWrapper | None = None,
    ) -> None:
        self.name = name
        self.wrap_tool_call = wrap_tool_call
        self.awrap_tool_call = awrap_tool_call
        self.tags = tags
        self.handle_tool_errors = handle_tool_errors
        self.messages_key = messages_key
        self.tools_by_name: dict[str, BaseTool] = {}
        self._runnable: dict[str, BaseTool] = {}
        self._injected: dict[str, _Injected] = {}
        for item in tools:
            tool = item if isinstance(item, BaseTool) else create_tool(item)
            self.tools_by_name[tool.name] = tool
            self._runnable[tool.name] = command_aware(tool)
            self._injected[tool.name] = _injected_args(tool)

    # -- input -------------------------------------------------------------------------------

    def _parse(self, input: Any) -> tuple[list[ToolCall], InputType, Any]:
        """(tool calls, input type, the state tools may be injected with)."""
        if isinstance(input, list):
            if input and isinstance(input[-1], dict) and input[-1].get("type") == "tool_call":
                # As LangGraph's: no state comes with the calls, so tools see the graph's
                # (as the step began), or nothing outside a graph.
                return cast(list[ToolCall], input), "tool_calls", graph_state() or {}
            kind: InputType = "list"
            messages = input
        elif isinstance(input, dict) and input.get("__type") == "tool_call_with_context":
            return [input["tool_call"]], "tool_calls", input["state"]
        elif isinstance(input, dict) and input.get(self.messages_key):
            kind, messages = "dict", input[self.messages_key]
        elif getattr(input, self.messages_key, None):
            kind, messages = "dict", getattr(input, self.messages_key)
        else:
            raise ValueError("No message found in input")
        ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if ai is None:
            raise ValueError("No AIMessage found in input")
        return list(ai.tool_calls), kind, input

    # -- one call ----------------------------------------------------------------------------

    def _tool_runtime(self, call: ToolCall, state: Any, config: Any) -> ToolRuntime[Any, Any]:
        """The `ToolRuntime` of one call: as LangGraph builds it, from the node's input, the
        running graph (context, store, stream writer) and the node's config."""
        graph = _graph_runtime(config)
        return ToolRuntime(
            state=state,
            context=graph.context if graph is not None else None,
            config=config if config is not None else {},
            stream_writer=graph.stream_writer if graph is not None else _no_writer,
            tool_call_id=call["id"],
            store=graph.store if graph is not None else None,
            tools=list(self.tools_by_name.values()),
            execution_info=graph.execution_info if graph is not None else None,
            server_info=graph.server_info if graph is not None else None,
        )

    def _prepare(
        self, call: ToolCall, runtime: ToolRuntime[Any, Any], injected: _Injected
    ) -> dict[str, Any]:
        state, store = runtime.state, runtime.store
        args = {k: v for k, v in call["args"].items() if k not in injected.keys}
        if injected.state:
            if isinstance(state, list):
                state = self._messages_as_state(call, state, injected)
            for arg, key in injected.state.items():
                if key is None:
                    args[arg] = state
                elif isinstance(state, dict):
                    if key in state or arg not in injected.optional_state:
                        args[arg] = state[key]  # a KeyError naming the key, as LangGraph's
                elif hasattr(state, key) or arg not in injected.optional_state:
                    args[arg] = getattr(state, key)
        if injected.store is not None:
            if store is None:
                raise ValueError(
                    "Cannot inject store into tools with InjectedStore annotations - please "
                    "compile your graph with a store."
                )
            args[injected.store] = store
        if injected.runtime is not None:
            args[injected.runtime] = runtime
        return {**call, "args": args, "type": "tool_call"}

    def _messages_as_state(
        self, call: ToolCall, messages: list[Any], injected: _Injected
    ) -> dict[str, Any]:
        """A list of messages given as input, as the state a tool is injected with: LangGraph's
        rule (the whole state, or only its messages key, can be made of it; any other key
        cannot)."""
        wanted = list(injected.state.values())
        if wanted[0] is None or wanted == [self.messages_key]:
            return {self.messages_key: messages}
        fields = ", ".join(k for k in wanted if k)
        raise ValueError(
            f"Invalid input to ToolNode. Tool {call['name']} requires graph state dict as "
            f"input. State should contain fields {fields}."
        )

    def _invalid(self, call: ToolCall) -> ToolMessage:
        content = INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
            requested_tool=call["name"], available_tools=", ".join(self.tools_by_name)
        )
        return ToolMessage(content, name=call["name"], tool_call_id=call["id"], status="error")

    def _on_error(self, call: ToolCall, error: Exception) -> ToolMessage:
        flag = self.handle_tool_errors
        if isinstance(flag, type) and issubclass(flag, Exception):
            handled: tuple[type[Exception], ...] = (flag,)
        elif isinstance(flag, tuple):
            handled = flag
        elif callable(flag) and not isinstance(flag, type):
            handled = _handled_types(flag)
        else:
            handled = (Exception,)
        if not flag or not isinstance(error, handled):
            raise error
        return self._error_message(call, error)

    def _error_message(self, call: ToolCall, error: Exception) -> ToolMessage:
        flag = self.handle_tool_errors
        if isinstance(flag, bool | tuple | type):
            content = TOOL_CALL_ERROR_TEMPLATE.format(error=repr(error))
        elif isinstance(flag, str):
            content = flag
        else:
            content = flag(error)
        return ToolMessage(content, name=call["name"], tool_call_id=call["id"], status="error")

    def _result(self, call: ToolCall, response: Any) -> Any:
        if isinstance(response, CommandOutput):
            _name_replies(response.value, call, self.messages_key)
            return response.value
        if isinstance(response, ToolMessage):
            response.content = cast(Any, msg_content_output(response.content))
            return response
        raise TypeError(f"Tool {call['name']} returned unexpected type: {type(response)}")

    def _request(self, call: ToolCall, state: Any, config: Any) -> ToolCallRequest:
        tool = self.tools_by_name.get(call["name"])
        return ToolCallRequest(call, tool, state, self._tool_runtime(call, state, config))

    def _target(self, request: ToolCallRequest) -> tuple[BaseTool, _Injected]:
        """The tool to run (command-aware) and its injected arguments; a tool a wrapper put
        in the request that this node does not hold is looked at now."""
        tool = request.tool
        assert tool is not None
        if self.tools_by_name.get(tool.name) is tool:
            return self._runnable[tool.name], self._injected[tool.name]
        return command_aware(tool), _injected_args(tool)

    def _execute(self, request: ToolCallRequest, config: Any) -> Any:
        call = request.tool_call
        if request.tool is None:
            return self._invalid(call)
        tool, injected = self._target(request)
        try:
            try:
                response = tool.invoke(self._prepare(call, request.runtime, injected), config)
            except ValidationError as exc:
                raise ToolInvocationError(call["name"], exc, call["args"]) from exc
            return self._result(call, response)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            return self._on_error(call, exc)

    async def _aexecute(self, request: ToolCallRequest, config: Any) -> Any:
        call = request.tool_call
        if request.tool is None:
            return self._invalid(call)
        tool, injected = self._target(request)
        try:
            try:
                prepared = self._prepare(call, request.runtime, injected)
                response = await tool.ainvoke(prepared, config)
            except ValidationError as exc:
                raise ToolInvocationError(call["name"], exc, call["args"]) from exc
            return self._result(call, response)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            return self._on_error(call, exc)

    def _run_one(self, call: ToolCall, state: Any, config: Any) -> Any:
        request = self._request(call, state, config)
        if self.wrap_tool_call is None:
            return self._execute(request, config)
        try:
            return self.wrap_tool_call(request, lambda r: self._execute(r, config))
        except GraphBubbleUp:
            raise
        except Exception as exc:
            return self._on_wrapper_error(request, exc)

    async def _arun_one(self, call: ToolCall, state: Any, config: Any) -> Any:
        request = self._request(call, state, config)
        try:
            if self.awrap_tool_call is not None:
                return await self.awrap_tool_call(request, lambda r: self._aexecute(r, config))
            if self.wrap_tool_call is not None:  # as LangGraph: its execute runs the tool sync
                return self.wrap_tool_call(request, lambda r: self._execute(r, config))
        except GraphBubbleUp:
            raise
        except Exception as exc:
            return self._on_wrapper_error(request, exc)
        return await self._aexecute(request, config)

    def _on_wrapper_error(self, request: ToolCallRequest, error: Exception) -> ToolMessage:
        """LangGraph's rule for a wrapper's error: any `handle_tool_errors` but False words it
        (the default one raises all but argument errors)."""
        if not self.handle_tool_errors:
            raise error
        return self._error_message(request.tool_call, error)

    # -- the node ----------------------------------------------------------------------------

    def invoke(self, input: Any, config: Any = None, **_: Any) -> Any:
        """Run the tool calls in parallel threads; see the class docstring."""
        calls, kind, state = self._parse(input)
        with ThreadPoolExecutor(max_workers=max(len(calls), 1)) as pool:
            futures = [
                pool.submit(copy_context().run, self._run_one, c, state, config) for c in calls
            ]
            outputs = _gather([f.exception() or f.result() for f in futures])
        return self._combine(outputs, kind)

    async def ainvoke(self, input: Any, config: Any = None, **_: Any) -> Any:
        """Run the tool calls concurrently; see the class docstring."""
        calls, kind, state = self._parse(input)
        results: list[Any] = [None] * len(calls)

        async def one(index: int, call: ToolCall) -> None:
            try:
                results[index] = await self._arun_one(call, state, config)
            except Exception as exc:  # collected: the first interrupt or error wins below
                results[index] = exc

        async with anyio.create_task_group() as group:
            for index, call in enumerate(calls):
                group.start_soon(one, index, call)
        return self._combine(_gather(results), kind)

    def _combine(self, outputs: list[Any], kind: InputType) -> Any:
        flat: list[Any] = []
        for output in outputs:
            flat.extend(output if isinstance(output, list) else [output])
        if not any(isinstance(o, Command) for o in flat):
            return flat if kind == "list" else {self.messages_key: flat}
        parents = [o for o in flat if isinstance(o, Command) and o.graph == Command.PARENT]
        if parents:
            if len(parents) != len(flat):
                raise ValueError(
                    "tools returned Command(graph=Command.PARENT) together with other results; "
                    "return PARENT commands from every tool call of the step, or none"
                )
            # One command for the parent with every update (a handoff's messages) and target.
            goto: list[Any] = [g for p in parents for g in p.goto_targets()]
            update = [item for p in parents for item in _items(p.update)]
            return Command(graph=Command.PARENT, update=update or None, goto=goto)
        updates: list[tuple[str, Any]] = []
        gotos: list[Any] = []
        for output in flat:
            if isinstance(output, Command):
                updates.extend(_items(output.update))
                gotos.extend(output.goto_targets())
            else:
                updates.append((self.messages_key, [output]))
        return Command(update=updates, goto=gotos)

    def __repr__(self) -> str:
        return f"ToolNode(tools={list(self.tools_by_name)})"


def _name_replies(result: Any, call: ToolCall, messages_key: str) -> None:
    """The `ToolMessage` answering `call` in a tool's `Command` gets the tool's name, as
    LangGraph's ToolNode gives it."""
    for command in result if isinstance(result, list) else [result]:
        update = getattr(command, "update", None)
        messages = update.get(messages_key) if isinstance(update, dict) else update
        for message in messages if isinstance(messages, list | tuple) else ():
            if isinstance(message, ToolMessage) and message.tool_call_id == call["id"]:
                message.name = call["name"]


def _items(update: Any) -> list[tuple[str, Any]]:
    if update is None:
        return []
    if isinstance(update, dict):
        return list(update.items())
    return list(update)


def _gather(results: list[Any]) -> list[Any]:
    """Raise what the calls raised: their interrupts together (one pause), else the first
    error; otherwise the results in call order."""
    from hitl_async.errors import GraphInterrupt

    interrupts = [r for r in results if isinstance(r, GraphInterrupt)]
    if interrupts:
        raise GraphInterrupt([i for gi in interrupts for i in gi.interrupts])
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def _graph_runtime(config: Any) -> Runtime[Any] | None:
    """The running graph's `Runtime`; outside a graph, the one the config carries under
    LangGraph's key `__pregel_runtime` (how its tests give a ToolNode invoked directly a store
    and context), else None."""
    from hitl_async._runtime import active_scratchpad

    pad = active_scratchpad()
    if pad is None or pad.run is None:
        given = ((config or {}).get("configurable") or {}).get("__pregel_runtime")
        return given if isinstance(given, Runtime) else None
    return get_runtime()


def _no_writer(_: Any) -> None:
    """The stream writer of a ToolNode called outside a graph: writes go nowhere."""


def tools_condition(
    state: list[AnyMessage] | dict[str, Any] | Any, messages_key: str = "messages"
) -> Literal["tools", "__end__"]:
    """Route to "tools" when the last message has tool calls, else to END."""
    if isinstance(state, list):
        message = state[-1] if state else None
    else:
        found = state.get(messages_key) if isinstance(state, dict) else None
        messages = found or getattr(state, messages_key, None)
        if not messages:
            raise ValueError(f"No messages found in input state to tool_edge: {state}")
        message = messages[-1]
    if isinstance(message, AIMessage) and message.tool_calls:
        return "tools"
    return "__end__"
