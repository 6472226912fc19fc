"""What the ported agents share, with no graph library imported: a scripted chat model and the
recorder that turns what a user looks at (results, stream chunks, snapshots) into plain JSON.

Both sides load this same module (LangGraph's venv and ours), so anything it normalises is
normalised alike; library-specific differences are normalised in `compare.py`, never here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk

__all__ = ["ID", "Recorder", "ScriptedChatModel", "ai", "to_json"]


ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b")
"""What an id looks like (checkpoint, task, run and interrupt ids): a UUID or 32 hex digits."""


def ai(content: str = "", *calls: tuple[str, dict[str, Any], str]) -> AIMessage:
    """A scripted model reply: text and `(tool name, args, call id)` tool calls."""
    return AIMessage(
        content=content,
        tool_calls=[{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in calls],
    )


class ScriptedChatModel(GenericFakeChatModel):
    """langchain-core's fake chat model with tools "bound" (the script decides the calls) and a
    stream that keeps the tool calls (the base class streams only the text)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> BaseChatModel:
        return self

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any):
        message = self._generate(messages).generations[0].message
        assert isinstance(message, AIMessage)
        tokens = [t for t in re.split(r"(\s)", str(message.content)) if t]
        for token in tokens:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id=message.id))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        if message.tool_calls:
            calls = [
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": n}
                for n, c in enumerate(message.tool_calls)
            ]
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(content="", id=message.id, tool_call_chunks=calls)
            )
            if run_manager:
                run_manager.on_llm_new_token("", chunk=chunk)
            yield chunk


def _message(m: BaseMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"type": m.type, "content": m.content}
    if m.name:
        out["name"] = m.name
    if isinstance(m, AIMessage) and m.tool_calls:
        out["tool_calls"] = [[c["name"], c["args"], c["id"]] for c in m.tool_calls]
    if isinstance(m, ToolMessage):
        out["tool_call_id"] = m.tool_call_id
        if m.status != "success":
            out["status"] = m.status
    return out


def to_json(value: Any) -> Any:
    """A plain-JSON view of a value: messages by type/content/tool calls (ids dropped), an
    `Interrupt` by value and id, a snapshot by what users read of it, tuples as lists."""
    name = type(value).__name__
    if isinstance(value, BaseMessage):
        return _message(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if name == "StateSnapshot":  # a NamedTuple: before tuples
        return snapshot(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if name == "Interrupt":
        return {"Interrupt": to_json(value.value), "id": value.id}
    if name == "Send":
        return {"Send": value.node, "arg": to_json(value.arg)}
    if name == "Command":
        fields = ("graph", "update", "resume", "goto")
        return {"Command": {f: to_json(getattr(value, f)) for f in fields if getattr(value, f)}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_json(dataclasses.asdict(value))}
    if hasattr(value, "model_dump"):
        return {name: to_json(value.model_dump())}
    if isinstance(value, set | frozenset):
        return sorted(to_json(v) for v in value)
    return {"repr": name}


def snapshot(s: Any) -> dict[str, Any]:
    """What a user reads of a `StateSnapshot`: values, next, its tasks (name, interrupts, error
    kind) and the metadata's source/step; ids and timestamps left out."""
    tasks = [
        {
            "name": t.name,
            "interrupts": [to_json(i) for i in t.interrupts],
            **({"error": type(t.error).__name__} if t.error else {}),
            **({"state": "subgraph"} if t.state else {}),
        }
        for t in s.tasks
    ]
    meta = s.metadata or {}
    return {
        "values": to_json(s.values),
        "next": list(s.next),
        "tasks": tasks,
        "interrupts": [to_json(i) for i in getattr(s, "interrupts", ())],
        "source": meta.get("source"),
        "step": meta.get("step"),
    }


class Recorder:
    """An ordered list of `(label, value)` an agent records; `record` drains a stream."""

    def __init__(self) -> None:
        self.entries: list[list[Any]] = []
        self.prefix = ""
        """Put before every label (an agent run twice, e.g. on two checkpointers)."""

    def add(self, label: str, value: Any, *, unordered_interrupts: bool = False) -> Any:
        """Record `value`; `unordered_interrupts`: an `invoke()` result whose `__interrupt__`
        list gathers parallel tasks' interrupts in the order they happened (sorted here)."""
        view = to_json(value)
        if unordered_interrupts and isinstance(view, dict) and "__interrupt__" in view:
            view["__interrupt__"].sort(key=lambda i: json.dumps(i["Interrupt"], sort_keys=True))
        self.entries.append([self.prefix + label, view])
        return value

    def error(self, label: str, exc: BaseException) -> None:
        self.entries.append([self.prefix + label, {"error": type(exc).__name__}])

    def stream(self, label: str, chunks: Iterator[Any], *, unordered: bool = False) -> list[Any]:
        """Record every chunk of a stream (a `messages` chunk as its content and node).

        `unordered`: the chunks come from tasks running concurrently, in the order they happen
        to finish (in LangGraph as here), so they are recorded sorted."""
        out = list(chunks)
        views = [to_json(_stream_view(chunk)) for chunk in out]
        if unordered:  # (ids are random: not part of the order)
            views.sort(key=lambda v: ID.sub("", json.dumps(v, sort_keys=True)))
        self.entries += [[self.prefix + label, v] for v in views]
        return out

    def dump(self) -> str:
        return json.dumps(self.entries, indent=1, sort_keys=True)


def _stream_view(chunk: Any) -> Any:
    """A `messages` chunk `(message, metadata)` keeps the text, tool calls and node only."""
    match chunk:
        case ("messages", (BaseMessage() as m, dict() as meta)):
            return ["messages", _message_chunk(m, meta)]
        case (tuple() as ns, "messages", (BaseMessage() as m, dict() as meta)):
            return [ns, "messages", _message_chunk(m, meta)]
        case (BaseMessage() as m, dict() as meta) if "langgraph_node" in meta:
            return _message_chunk(m, meta)
    return chunk


def _message_chunk(m: BaseMessage, meta: dict[str, Any]) -> dict[str, Any]:
    view = _message(m)
    if isinstance(m, AIMessageChunk) and m.tool_call_chunks:
        view["tool_call_chunks"] = [[c["name"], c["args"]] for c in m.tool_call_chunks]
    view["langgraph_node"] = meta.get("langgraph_node")
    return view
