"""`stream_mode="events"`: LangChain `astream_events` (v2)-shaped events, as LangGraph's server
streams them, made from the engine's `tasks`, `messages`, `checkpoints` and `values` modes.

What is emitted (each `{"event", "data", "name", "tags", "run_id", "metadata", "parent_ids"}`):

- `on_chain_start` / `on_chain_end` for the graph (name: the graph id; `data.input`: the run's
  input, `data.output`: the final values);
- per node task: `on_chain_start` (`data.input`: the task's input), then when it ends without
  an error or interrupt `on_chain_stream` (`data.chunk`: its writes) and `on_chain_end`;
  tagged `graph:step:N`, with `langgraph_step`, `langgraph_node`, `langgraph_triggers`,
  `langgraph_path` and `langgraph_checkpoint_ns` in `metadata`, as LangGraph's are;
- per chat-model token chunk `on_chat_model_stream` (`data.chunk`), and for a message that
  arrives whole `on_chat_model_end` (`data.output`); named by the model's `ls_model_name` (or
  `ls_provider`), not its class name, with no tags.

Not emitted: the events of runnables inside a node other than chat models (prompts, parsers,
tools called directly, retrievers), `on_chat_model_start`, and `on_chain_start`/`end` of the
model call itself; those would need LangChain's callback tree for every runnable a node calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from hitl_async.server.encoding import dumps

__all__ = ["EVENTS_SOURCE_MODES", "ChainEvents"]

EVENTS_SOURCE_MODES = ("tasks", "messages", "checkpoints", "values")
"""The engine modes `ChainEvents` is made from (streamed whenever a client asks for events)."""


def _as_run_id(task_id: str) -> str:
    """A task id as the UUID LangChain gives each runnable run (32 hex digits: their UUID)."""
    try:
        return str(uuid.UUID(hex=task_id))
    except ValueError:
        return task_id


def _model_run_id(message: Any, fallback: str) -> str:
    """LangChain names a model's message `lc_run--<run id>`: that run id, else `fallback`."""
    msg_id = getattr(message, "id", None) or ""
    return msg_id.removeprefix("lc_run--") if msg_id.startswith("lc_run--") else fallback


class ChainEvents:
    """One run's engine items turned into SSE `("events", data)` pairs."""

    def __init__(self, graph_id: str, run_id: str, metadata: Mapping[str, Any]) -> None:
        self.graph_id = graph_id
        self.run_id = run_id
        self.metadata = dict(metadata)
        self._step: dict[tuple[str, ...], int] = {}
        self._tasks: dict[str, dict[str, Any]] = {}
        """Started tasks by id: their run id, input, tags and metadata."""
        self._output: Any = None

    def _event(
        self,
        event: str,
        name: str,
        data: Mapping[str, Any],
        *,
        run_id: str,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        parent_ids: Sequence[str] = (),
    ) -> tuple[str, str]:
        return (
            "events",
            dumps(
                {
                    "event": event,
                    "data": dict(data),
                    "name": name,
                    "tags": list(tags),
                    "run_id": run_id,
                    "metadata": dict(metadata if metadata is not None else self.metadata),
                    "parent_ids": list(parent_ids),
                }
            ),
        )

    def start(self, run_input: Any) -> list[tuple[str, str]]:
        """The graph's `on_chain_start`."""
        return [
            self._event("on_chain_start", self.graph_id, {"input": run_input}, run_id=self.run_id)
        ]

    def end(self) -> list[tuple[str, str]]:
        """The graph's `on_chain_end` with the last values."""
        return [
            self._event("on_chain_end", self.graph_id, {"output": self._output}, run_id=self.run_id)
        ]

    def item(self, namespace: Sequence[str], mode: str, chunk: Any) -> list[tuple[str, str]]:
        """The events one engine item makes (often none)."""
        ns = tuple(namespace)
        if mode == "checkpoints" and isinstance(chunk, Mapping):
            step = (chunk.get("metadata") or {}).get("step")
            if isinstance(step, int):
                self._step[ns] = step + 1
            return []
        if mode == "values":
            if not ns:  # (without the interrupts, as LangGraph's graph output has none)
                self._output = (
                    {k: v for k, v in chunk.items() if k != "__interrupt__"}
                    if isinstance(chunk, Mapping)
                    else chunk
                )
            return []
        if mode == "tasks" and isinstance(chunk, Mapping):
            return self._task(ns, chunk)
        if mode == "messages":
            return self._message(chunk)
        return []

    def _task(self, ns: tuple[str, ...], chunk: Mapping[str, Any]) -> list[tuple[str, str]]:
        task_id = str(chunk.get("id", ""))
        name = str(chunk.get("name", ""))
        if "input" in chunk:  # a task starts
            step = self._step.get(ns, 1)
            checkpoint_ns = "|".join((*ns, f"{name}:{task_id}"))
            metadata = {
                **self.metadata,
                "langgraph_step": step,
                "langgraph_node": name,
                "langgraph_triggers": list(chunk.get("triggers") or ()),
                "langgraph_path": ["__pregel_pull", name],
                "langgraph_checkpoint_ns": checkpoint_ns,
            }
            task: dict[str, Any] = {
                "run_id": _as_run_id(task_id),
                "input": chunk.get("input"),
                "tags": [f"graph:step:{step}"],
                "metadata": metadata,
            }
            self._tasks[task_id] = task
            return [self._task_event("on_chain_start", name, {"input": task["input"]}, task)]
        started = self._tasks.pop(task_id, None)
        if started is None or chunk.get("error") or chunk.get("interrupts"):
            return []
        result = chunk.get("result")
        end = {"output": result, "input": started["input"]}
        return [
            self._task_event("on_chain_stream", name, {"chunk": result}, started),
            self._task_event("on_chain_end", name, end, started),
        ]

    def _task_event(
        self, event: str, name: str, data: Mapping[str, Any], task: Mapping[str, Any]
    ) -> tuple[str, str]:
        return self._event(
            event,
            name,
            data,
            run_id=task["run_id"],
            tags=task["tags"],
            metadata=task["metadata"],
            parent_ids=[self.run_id],
        )

    def _message(self, item: Any) -> list[tuple[str, str]]:
        message, metadata = item if isinstance(item, tuple) and len(item) == 2 else (item, {})
        meta = dict(metadata) if isinstance(metadata, Mapping) else {}
        checkpoint_ns = str(meta.get("langgraph_checkpoint_ns", ""))
        task_id = checkpoint_ns.rsplit("|", 1)[-1].partition(":")[2]
        parents = [self.run_id, *([_as_run_id(task_id)] if task_id else [])]
        chunk = type(message).__name__.endswith("Chunk")
        return [
            self._event(
                "on_chat_model_stream" if chunk else "on_chat_model_end",
                str(meta.get("ls_model_name") or meta.get("ls_provider") or "chat_model"),
                {"chunk": message} if chunk else {"output": message},
                run_id=_model_run_id(message, self.run_id),
                metadata={**self.metadata, **meta},
                parent_ids=parents,
            )
        ]
