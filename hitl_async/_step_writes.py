"""The writes of the step that runs from a stored checkpoint, as LangGraph's checkpointers list
them in `CheckpointTuple.pending_writes`: for an unfinished step and for a completed one alike.

LangGraph stores every task's writes against the checkpoint its step ran from. The engine stores
only an unfinished step's (its pending writes); a completed step's are in the header of the
checkpoint it made (`EngineCheckpoint.made_by`) or, for a one-task step without reducers, in the
channels that checkpoint changed. Both are read here, so nothing is added to a step's cost.
Routing (`branch:to:x`, `__pregel_tasks`) is LangGraph's channel machinery and is not listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hitl_async._checkpoint import NULL_TASK, EngineCheckpoint
from hitl_async._run import SKIPPED_STEP
from hitl_async._schema import ROOT
from hitl_async._task import prepare_tasks
from hitl_async.constants import ERROR, INTERRUPT, RESUME

__all__ = ["NULL_TASK_ID", "ROOT_CHANNEL", "channel_name", "step_writes", "tells_step"]

NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
"""LangGraph's task id of writes that come from the run's input (`Command(update=...)`)."""

ROOT_CHANNEL = "__root__"
"""LangGraph's channel of a root-value state (ours is stored as `ROOT`)."""

_RANK = {RESUME: -4, INTERRUPT: -3, ERROR: -1}
"""LangGraph's write index of the special channels: they sort before a task's other writes."""

_SHOWN_SPECIAL = frozenset(_RANK)

Write = tuple[str, str, Any]


def channel_name(channel: str) -> str:
    """A stored channel under LangGraph's name."""
    return ROOT_CHANNEL if channel == ROOT else channel


def tells_step(parent: EngineCheckpoint, child: EngineCheckpoint) -> bool:
    """Whether `child` (made from `parent`) knows the writes of `parent`'s step: kept in its
    header, or a loop step of one task whose writes the channels `child` changed hold."""
    if child.made_by == SKIPPED_STEP:  # its parent was skipped (durability="exit")
        return False
    if child.made_by:
        return True
    return (
        child.metadata.get("source") == "loop"
        and NULL_TASK not in child.writes
        and NULL_TASK not in parent.writes
    )


def step_writes(cp: EngineCheckpoint, ns: str, child: EngineCheckpoint | None) -> list[Write]:
    """`(task_id, channel, value)` of the step that runs from `cp`, in LangGraph's order (by
    task path: the null task's (`Command(update=...)`), nodes by name, then `Send`s as made;
    in a task: resume, interrupt, error, then its writes as made): what is stored with `cp`,
    and what `child` (a checkpoint made from `cp`, if one tells) kept of the tasks that
    finished in the step that made it."""
    tasks = prepare_tasks(cp, ns)
    by_id = {t.id: t for t in tasks}
    keyed: list[tuple[tuple[str, str, int], Write]] = []
    special: dict[tuple[str, str], tuple[tuple[str, str, int], Write]] = {}

    def add(task_id: str, path: str, rows: Iterable[tuple[str, Any]]) -> None:
        for n, (channel, value) in enumerate(rows):
            if channel[:2] == "__" and channel not in _SHOWN_SPECIAL:
                continue  # the engine's own bookkeeping and routing
            if channel == INTERRUPT:
                value = [i for i in value if not isinstance(i, str)]  # (no rerun marker)
            elif channel == RESUME:
                value = [v for _, v in value]
            row = ((path, task_id, _RANK.get(channel, n)), (task_id, channel_name(channel), value))
            if channel in _SHOWN_SPECIAL:  # one each per task: a later one replaces (answers
                special[task_id, channel] = row  # given across two pauses: all of them)
            else:
                keyed.append(row)

    stored: set[int] = set()
    for tid, rows in cp.writes.items():
        if tid == NULL_TASK:
            add(NULL_TASK_ID, "", ((c, v) for _, c, v in rows))
            continue
        task = by_id.get(tid)
        if task is not None and task.done:
            stored.add(task.index)
        add(tid, _path(task.path) if task is not None else "", ((c, v) for _, c, v in rows))
    if child is not None and tells_step(cp, child):
        for index, made in _made(cp, child).items():
            if 0 <= index < len(tasks) and index not in stored:
                task = tasks[index]
                add(task.id, _path(task.path), made)
    keyed += special.values()
    keyed.sort(key=lambda kw: kw[0])
    return [w for _, w in keyed]


def _made(cp: EngineCheckpoint, child: EngineCheckpoint) -> dict[int, list[tuple[str, Any]]]:
    """The writes `child` kept of the tasks of `cp`'s step, by task index."""
    if child.made_by:
        return child.made_by_tasks()
    if len(cp.tasks) != 1:
        return {}
    changed = [
        (k, v)
        for k, v in child.values.items()
        if child.versions.get(k) == child.checkpoint_id and k[:2] != "__"
    ]
    return {0: changed}


def _path(path: tuple[Any, ...]) -> str:
    """A task path as LangGraph's savers sort it (`task_path_str`)."""
    return "~" + ", ".join(f"{p:010d}" if type(p) is int else str(p) for p in path)
