"""The chunks of the `checkpoints`, `tasks` and `debug` stream modes, shaped as LangGraph's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hitl_async._task import node_input, task_result
from hitl_async.constants import PUSH
from hitl_async.errors import ParentCommand

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hitl_async._run import Run
    from hitl_async._task import Task
    from hitl_async.types import Interrupt

__all__ = [
    "emit_call_result",
    "emit_call_start",
    "emit_checkpoint",
    "emit_task_result",
    "emit_task_start",
    "subgraph_config",
]


def subgraph_config(run: Run, node: str, task_id: str) -> dict[str, Any] | None:
    """For a task of a node that runs a subgraph, the config of the subgraph's state (its
    namespace, for `get_state`), as LangGraph's snapshots give it; None for other tasks."""
    if not run.graph.subgraphs_of(node):
        return None
    part = f"{node}:{task_id}"
    ns = f"{run.ns}|{part}" if run.ns else part
    return {"configurable": {"thread_id": run.thread_id, "checkpoint_ns": ns}}


def emit_checkpoint(run: Run, pending: Mapping[str, tuple[Interrupt, ...]] | None = None) -> None:
    """The run's current checkpoint, in `checkpoints` and `debug` mode (none without a
    checkpointer, nor in a `checkpointer=False` subgraph, as in LangGraph); `pending`: each
    task's unanswered interrupts as the checkpoint was loaded (a resuming run answered them)."""
    if "checkpoints" not in run.modes and "debug" not in run.modes:
        return
    if run.saver is None or run.graph.stateless:
        return
    cp = run.cp
    payload = {
        "config": run.config_for(cp.checkpoint_id),
        "parent_config": run.config_for(cp.parent_id) if cp.parent_id else None,
        "values": run.stream_values(),
        "metadata": dict(cp.metadata),
        "next": [t.name for t in run.tasks if not t.done],
        "tasks": [
            {
                "id": t.id,
                "name": t.name,
                "interrupts": tuple(
                    {"value": i.value, "id": i.id, "response_schema": i.response_schema}
                    for i in (t.pending if pending is None else pending.get(t.id, ()))
                ),
                "state": subgraph_config(run, t.name, t.id),
            }
            for t in run.tasks
            if not t.done
        ],
    }
    run.emit("checkpoints", payload)
    _emit_debug(run, "checkpoint", cp.step, payload)


_INTERNAL_METADATA = frozenset(
    {
        "thread_id",
        "checkpoint_id",
        "checkpoint_ns",
        "checkpoint_map",
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
    }
)
"""The engine's own per-task keys, left out of a task event's `metadata` as LangGraph does."""


def _task_metadata(run: Run) -> dict[str, Any]:
    """The run's user metadata and tags (without `seq:step:*`), as LangGraph forwards them."""
    md = {
        k: v for k, v in (run.config.get("metadata") or {}).items() if k not in _INTERNAL_METADATA
    }
    tags = [t for t in run.config.get("tags") or () if not str(t).startswith("seq:step")]
    if tags:
        md["tags"] = tags
    return md


def _emit_debug(run: Run, kind: str, step: int, payload: dict[str, Any]) -> None:
    if "debug" not in run.modes:
        return
    run.emit(
        "debug",
        {
            "step": step,
            "timestamp": datetime.now(UTC).isoformat(),
            "type": kind,
            "payload": payload,
        },
    )


def emit_task_start(run: Run, t: Task, step: int, state: Any) -> None:
    """A task is about to run, in `tasks` and `debug` mode; `state` is what a node without an
    input schema of its own reads (managed keys such as `RemainingSteps` included)."""
    arg = node_input(run.graph, t, run.cp.values, lambda: state, run)
    payload = {
        "id": t.id,
        "name": t.name,
        "input": arg,
        "triggers": run.graph.builder.triggers_of(t.name) if not t.spec.push else (PUSH,),
    }
    metadata = _task_metadata(run)
    if metadata:
        payload["metadata"] = metadata
    run.emit("tasks", payload)
    _emit_debug(run, "task", step, payload)


def emit_task_result(run: Run, t: Task, step: int) -> None:
    """A task finished, paused or failed, in `tasks` and `debug` mode (one that handed a
    `Command` to its parent graph reports nothing, as in LangGraph: the parent runs it)."""
    if isinstance(t.error, ParentCommand):
        return
    payload = {
        "id": t.id,
        "name": t.name,
        "error": repr(t.error) if t.error is not None else None,
        "result": task_result(t.writes, root=run.graph.builder.schema.is_root) if t.done else {},
        "interrupts": [{"value": i.value, "id": i.id} for i in t.pending],
    }
    run.emit("tasks", payload)
    _emit_debug(run, "task_result", step, payload)


def emit_call_start(run: Run, call_id: str, name: str, args: Any, kwargs: Any) -> None:
    """A `@task` call starts, in `tasks` and `debug` mode: a task of its own, its arguments as
    `(args, kwargs)`, pushed by its caller, as LangGraph reports a call."""
    if "tasks" not in run.modes and "debug" not in run.modes:
        return
    payload = {
        "id": call_id,
        "name": name,
        "input": (tuple(args), dict(kwargs)),
        "triggers": (PUSH,),
    }
    run.emit("tasks", payload)
    _emit_debug(run, "task", run.cp.step + 1, payload)


def emit_call_result(
    run: Run,
    call_id: str,
    name: str,
    value: Any = None,
    error: BaseException | None = None,
    interrupts: tuple[Interrupt, ...] = (),
) -> None:
    """A `@task` call returned (`{"__return__": value}`), failed or paused, in `tasks` and
    `debug` mode, as LangGraph reports it."""
    if "tasks" not in run.modes and "debug" not in run.modes:
        return
    done = error is None and not interrupts
    payload = {
        "id": call_id,
        "name": name,
        "error": repr(error) if error is not None else None,
        "result": {"__return__": value} if done else {},
        "interrupts": [{"value": i.value, "id": i.id} for i in interrupts],
    }
    run.emit("tasks", payload)
    _emit_debug(run, "task_result", run.cp.step + 1, payload)
