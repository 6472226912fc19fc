"""A thread's state as the API shows it: `StateSnapshot` to JSON, and the thread record's
status, values and interrupts derived from it."""

from __future__ import annotations

from typing import Any

from hitl_async.server.encoding import jsonable
from hitl_async.types import StateSnapshot

__all__ = ["checkpoint_ref", "interrupts_by_task", "snapshot_json", "status_of"]


def checkpoint_ref(config: dict[str, Any] | None, thread_id: str) -> dict[str, Any] | None:
    """`{"thread_id", "checkpoint_ns", "checkpoint_id"}` of a snapshot's (parent) config."""
    if not config:
        return None
    conf = config.get("configurable") or {}
    if conf.get("checkpoint_id") is None:
        return None
    return {
        "checkpoint_id": conf["checkpoint_id"],
        "thread_id": conf.get("thread_id") or thread_id,
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
    }


def _task(task: Any, thread_id: str) -> dict[str, Any]:
    state = task.state
    return {
        "id": task.id,
        "name": task.name,
        "path": jsonable(task.path),
        "error": None if task.error is None else f"{type(task.error).__name__}: {task.error}",
        "interrupts": [jsonable(i) for i in task.interrupts],
        "checkpoint": None,
        "state": snapshot_json(state, thread_id) if isinstance(state, StateSnapshot) else None,
        "result": jsonable(task.result),
    }


def snapshot_json(snapshot: StateSnapshot, thread_id: str) -> dict[str, Any]:
    """The JSON LangGraph's server answers `get_state` / `get_history` with."""
    current = checkpoint_ref(snapshot.config, thread_id)
    parent = checkpoint_ref(snapshot.parent_config, thread_id)
    return {
        "values": jsonable(snapshot.values) if snapshot.metadata is not None else {},
        "next": list(snapshot.next),
        "tasks": [_task(t, thread_id) for t in snapshot.tasks],
        "metadata": jsonable(snapshot.metadata),
        "created_at": snapshot.created_at,
        "checkpoint": current,
        "parent_checkpoint": parent,
        "interrupts": [jsonable(i) for i in snapshot.interrupts],
        "checkpoint_id": current["checkpoint_id"] if current else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def interrupts_by_task(snapshot: StateSnapshot) -> dict[str, Any]:
    """Pending interrupts keyed by the id of the task that raised them."""
    found: dict[str, Any] = {}
    for task in snapshot.tasks:
        if task.interrupts and task.result is None:
            found[task.id] = [jsonable(i) for i in task.interrupts]
    return found


def status_of(snapshot: StateSnapshot, *, failed: bool = False) -> str:
    """error after a failed run; interrupted when work waits (an interrupt or a node paused
    before/after); else idle."""
    if failed:
        return "error"
    if snapshot.interrupts or snapshot.next:
        return "interrupted"
    return "idle"
