"""Editing a thread without running it: `update_state` / `bulk_update_state` (write values as if
nodes returned them; copy a checkpoint; end the thread; new input) and `cancel` (end the thread
where it is). Each superstep of edits is one new checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hitl_async._checkpoint import EngineCheckpoint, TaskSpec, flat_writes, write_records
from hitl_async._run import SKIPPED_STEP
from hitl_async._task import interrupt_row, route
from hitl_async.checkpoint.base import WriteRecord
from hitl_async.constants import (
    DONE,
    END,
    INTERRUPT,
    RESUME,
    START,
    TASK_RESULT,
    TASK_RESULT_IDX,
)
from hitl_async.errors import InvalidConfigError, InvalidUpdateError
from hitl_async.managed.base import StepWindow
from hitl_async.types import Command, StateUpdate

if TYPE_CHECKING:
    from hitl_async._run import Run
    from hitl_async._task import Task

__all__ = ["COPY", "INPUT", "bulk_update_state", "cancel_thread", "update_state"]


COPY = "__copy__"
"""`update_state(config, values, as_node="__copy__")`: a copy of the checkpoint (a sibling: same
parent, values and next tasks, metadata source "fork"), then `values` as a list of
`(values, as_node)` updates applied to the copy, if any."""

INPUT = "__input__"
"""`as_node="__input__"`: `values` becomes new input, as a run's input would (source "input")."""


async def update_state(run: Run, values: Any, as_node: str | None) -> dict[str, Any]:
    """Write `values` as if node `as_node` returned them, as a new checkpoint; returns its
    config."""
    return await bulk_update_state(run, [[StateUpdate(values, as_node)]])


async def bulk_update_state(run: Run, supersteps: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Apply `supersteps`, each a list of `StateUpdate`s (or `(values, as_node[, task_id])`
    tuples) applied together, as one new checkpoint per superstep; returns the last's config.
    Every superstep is checked before it is applied; a bad one raises `InvalidUpdateError`
    (the supersteps before it stay applied, as in LangGraph)."""
    if not supersteps:
        raise InvalidUpdateError(
            f"No supersteps provided: thread {run.thread_id!r}: bulk_update_state() needs a "
            "list of lists of StateUpdate(values, as_node)"
        )
    for i, updates in enumerate(supersteps):
        if not updates:
            raise InvalidUpdateError(
                f"No updates provided: thread {run.thread_id!r}: bulk_update_state() superstep {i} "
                "has none; each superstep is a non-empty list of StateUpdate(values, as_node)"
            )
    await run.load()
    for updates in supersteps:
        await _apply_superstep(run, [StateUpdate(*u) for u in updates])
    return run.config_for(run.cp.checkpoint_id)


def _only(run: Run, updates: list[StateUpdate], what: str) -> None:
    if len(updates) > 1:
        raise InvalidUpdateError(
            f"thread {run.thread_id!r}: {what} must be the only update of its superstep, got "
            f"{len(updates)} updates"
        )


async def _apply_superstep(run: Run, updates: list[StateUpdate]) -> None:
    values, as_node = updates[0].values, updates[0].as_node
    if as_node == END and values is None:
        _only(run, updates, "update_state(None, as_node=END), which ends the thread,")
        await _end(run)
    elif as_node == INPUT:
        _only(run, updates, 'update_state(values, as_node="__input__")')
        await _new_input(run, values)
    elif as_node == COPY:
        _only(run, updates, 'update_state(..., as_node="__copy__")')
        await _copy(run, values)
    else:
        await _update(run, updates)


async def _end(run: Run) -> None:
    """Finish the thread where it is: the writes of tasks that already finished in its step
    are applied, every other task is dropped (with its interrupts)."""
    finished = [(t.name, t.writes) for t in run.tasks if t.done]
    new_values = dict(run.cp.values)
    changed, _ = run.plan.step(new_values, finished)
    _next(run, new_values, changed, "update", [])
    await run.outbox.save()


async def _new_input(run: Run, values: Any) -> None:
    if values is None:
        raise InvalidUpdateError(
            f'thread {run.thread_id!r}: update_state(None, as_node="__input__") has no input; '
            "pass the input values"
        )
    step = run.cp.step + 1 if run.exists else -1
    run.cp.writes = {}
    run.new_checkpoint("input", step, [TaskSpec(START, True, values)])
    run.prepare_tasks()
    await run.outbox.save()


async def _copy(run: Run, values: Any) -> None:
    if not run.exists:
        raise InvalidUpdateError(
            f"thread {run.thread_id!r} has no checkpoint to copy (as_node={COPY!r}); start it "
            "with an input first"
        )
    parent = run.cp.parent_id
    specs = [t.spec for t in run.tasks]
    run.cp.writes = {}
    run.new_checkpoint("fork", run.cp.step + 1, specs)
    run.cp.parent_id = parent  # a sibling of the copied checkpoint, as LangGraph's copy
    run.prepare_tasks()
    await run.outbox.save()
    if isinstance(values, (list, tuple)) and values:
        items = []
        for item in values:
            if not isinstance(item, (list, tuple)) or len(item) < 2:
                raise InvalidUpdateError(
                    f"thread {run.thread_id!r}: update_state(values, as_node={COPY!r}) takes "
                    f"a list of (values, as_node) updates to apply to the copy, got {item!r}"
                )
            items.append(StateUpdate(item[0], item[1]))
        await _update(run, items)


async def _update(run: Run, updates: list[StateUpdate]) -> None:
    builder = run.graph.builder
    for u in updates:
        if u.as_node is None and len(updates) > 1:
            raise InvalidUpdateError(
                f"thread {run.thread_id!r}: each of several updates of one superstep needs "
                f"as_node; nodes are {sorted(builder.nodes)}"
            )
        if u.as_node is not None and u.as_node not in builder.nodes and u.as_node != START:
            raise InvalidUpdateError(
                f"thread {run.thread_id!r}: update_state(as_node={u.as_node!r}) names an "
                f"unknown node; nodes are {sorted(builder.nodes)}"
            )
    as_node = updates[0].as_node
    if as_node is None and not run.exists:
        as_node = START
    elif as_node is None and not run.pending():
        # As LangGraph: the update is the last writer's, so its edges route the thread anew
        # (e.g. an edited tool call makes new Sends). Paused on interrupt(), the tasks are kept.
        as_node = await _last_writer(run)
        updates = [StateUpdate(updates[0].values, as_node, updates[0].task_id)]
    at_head = run.head == run.cp.checkpoint_id  # False: forking a past checkpoint
    old_tasks = run.tasks
    new_values = dict(run.cp.values)
    made_by: list[tuple[int, list[tuple[str, Any]]]] = []
    if as_node is None:
        items = builder.schema.items(updates[0].values, source="update_state")
        changed = run.plan.apply(new_values, items, source="update_state")
        next_specs = [t.spec for t in old_tasks]
    else:
        writes = [(t.name, t.writes) for t in old_tasks if t.done]
        used: set[int] = set()
        for u in updates:
            node = u.as_node or START
            goto: tuple[Any, ...] = ()
            if isinstance(u.values, Command):  # as if the node returned it: update and goto
                items = builder.schema.items(u.values.update, source="update_state")
                goto = u.values.goto_targets()
            else:
                items = builder.schema.items(u.values, source="update_state")
            targets = await route(
                run.graph,
                node,
                items,
                new_values,
                goto,
                run.config,
                window=StepWindow(run.steps_run, run.limit),
                returned=u.values if type(u.values) is dict else None,
            )
            writes.append((node, items + targets))
            # The update stands for the step's pending task of that node: history shows it as
            # that task's result, as LangGraph's does.
            task = next(
                (
                    t
                    for t in old_tasks
                    if (t.id == u.task_id if u.task_id else t.name == node)
                    and not t.done
                    and t.index not in used
                ),
                None,
            )
            if task is not None and items:
                used.add(task.index)
                made_by.append((task.index, items))
        # As in LangGraph, the update completes the paused step: only the routes run next,
        # the targets of joins that fired (a join stays full until its target runs) and the
        # deferred nodes that were due (their trigger stays until they run).
        changed, next_specs = run.plan.step(new_values, writes)
        joined = await _fired_joins(run, old_tasks)
        if joined:
            for channel, (_, target) in run.plan.barriers.items():
                if target in joined and new_values.pop(channel, None) is not None:
                    changed.add(channel)
        due = {t.name for t in old_tasks if not t.done and not t.spec.push}
        joined |= due & run.plan.deferred
        if joined:
            pulls = {s.node for s in next_specs if not s.push} | joined
            next_specs = [s for s in next_specs if s.push] + [TaskSpec(n) for n in sorted(pulls)]
    _next(run, new_values, changed, "update", next_specs, flat_writes(made_by))
    records: list[WriteRecord] = []
    if as_node is None and at_head:
        records = _carried_over(run, old_tasks)
    await run.outbox.save(records)


async def _parent_tasks(run: Run) -> list[TaskSpec] | None:
    """The tasks of the step that made the current checkpoint (None when it was not a step
    of nodes: the thread's input, or an edit)."""
    if run.saver is None or run.cp.parent_id is None or run.cp.metadata.get("source") != "loop":
        return None
    loaded = await run.saver.load(run.need_thread(), run.ns, run.cp.parent_id)
    return None if loaded is None else EngineCheckpoint.decode(loaded, run.serde).tasks


async def _fired_joins(run: Run, old_tasks: list[Task]) -> set[str]:
    """Pending targets of joins that fired in the step that made the checkpoint: LangGraph
    keeps such a join full until its target runs, so an update leaves the target next."""
    pending = {t.name for t in old_tasks if not t.done and not t.spec.push}
    joins = [
        (starts, target)
        for channel, (starts, target) in run.plan.barriers.items()
        if target in pending and channel not in run.cp.values
    ]
    if not joins:
        return set()
    ran = {t.node for t in await _parent_tasks(run) or ()}
    return {target for starts, target in joins if starts & ran}


async def _last_writer(run: Run) -> str:
    """The node the update is applied as when none is named, as LangGraph infers it: the
    edge-triggered node that ran last (`Send` tasks and edits do not count), which the
    checkpoint keeps (`writer`); START before any node ran. Two such nodes in that step:
    `InvalidUpdateError`. A checkpoint of an older hitl-async has none: the stored chain is
    walked back, and an ancestor it needs that was pruned is an `InvalidUpdateError` naming
    `as_node` (never a guess: the update would route the thread from the wrong node)."""
    cp = run.cp
    thread_id = run.need_thread()
    while True:
        if cp.writer is not None:
            return _one_writer(run, set(cp.writer))
        if cp.parent_id is None:
            return START
        loaded = await run.saver.load(thread_id, run.ns, cp.parent_id) if run.saver else None
        if loaded is None:
            raise InvalidUpdateError(
                f"Ambiguous update, specify as_node: thread {run.thread_id!r}, checkpoint "
                f"{run.cp.checkpoint_id!r}: which node wrote the state last is not known (its "
                f"ancestor {cp.parent_id!r} is no longer stored, e.g. pruned); name it with "
                "update_state(config, values, as_node=...)"
            )
        parent = EngineCheckpoint.decode(loaded, run.serde)
        # A parent skipped under durability="exit" (no writer kept: no node ran since) did
        # not run this step; its own ancestry tells.
        if cp.made_by != SKIPPED_STEP and cp.metadata.get("source") == "loop":
            ran = {t.node for t in parent.tasks if not t.push or t.node == START}
            if ran:
                return _one_writer(run, ran)
        cp = parent


def _one_writer(run: Run, ran: set[str]) -> str:
    if len(ran) > 1:
        raise InvalidUpdateError(
            f"Ambiguous update, specify as_node: thread {run.thread_id!r}: nodes "
            f"{sorted(ran)} wrote the state in the same step; name one with "
            "update_state(config, values, as_node=...)"
        )
    return ran.pop()


def _next(
    run: Run,
    values: dict[str, Any],
    changed: set[str],
    source: str,
    specs: list[TaskSpec],
    made_by: list[Any] | None = None,
) -> None:
    """Move the run to a new checkpoint with `values` and the next tasks `specs`."""
    run.cp.values = values
    run.cp.versions = dict(run.cp.versions)
    run.cp.writes = {}
    run.dirty |= changed
    step = run.cp.step + 1 if run.exists else 0
    run.new_checkpoint(source, step, specs, made_by)
    run.prepare_tasks()


def _carried_over(run: Run, old_tasks: list[Task]) -> list[WriteRecord]:
    """Paused tasks stay paused: their interrupts (same ids) and finished siblings' writes move
    to the new checkpoint, so the thread can still be resumed as before."""
    records: list[WriteRecord] = []
    serde = run.serde
    for new, old in zip(run.tasks, old_tasks, strict=False):
        rows: list[tuple[str, Any]] = []
        if old.done:
            rows = [*old.writes, (DONE, None)]
        if old.raised is not None:
            rows.append((INTERRUPT, interrupt_row(old)))
        if old.answers:
            rows.append((RESUME, list(old.answers.items())))
        if rows:
            records += write_records(new.id, rows, serde, new.name, run.plan.untracked)
        for index, value in old.results.items():  # kept @task results stay kept
            new.results[index] = value
            kept: tuple[Any, ...] = (index, value)
            if index in old.call_writes:
                new.call_writes[index] = old.call_writes[index]
                kept += (old.call_writes[index],)
            blob = serde.dumps(kept, channel=f"{new.name} task result")
            records.append(
                WriteRecord(new.id, TASK_RESULT_IDX + index, TASK_RESULT, blob, new.name)
            )
    return records


async def cancel_thread(run: Run) -> dict[str, Any]:
    """End the thread where it is: a checkpoint (source "cancel") with no next tasks."""
    await run.load()
    if not run.exists:
        raise InvalidConfigError(f"thread {run.thread_id!r} does not exist; nothing to cancel")
    run.cp.writes = {}
    run.new_checkpoint("cancel", run.cp.step + 1, [])
    run.prepare_tasks()
    await run.outbox.save()
    return run.config_for(run.cp.checkpoint_id)
