"""Editing a thread without running it: `update_state` (write values as if a node returned them)
and `cancel` (end the thread where it is). Each is one new checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hitl_async._checkpoint import write_records
from hitl_async._task import route
from hitl_async.checkpoint.base import WriteRecord
from hitl_async.constants import DONE, INTERRUPT, RESUME, START, TASK_RESULT, TASK_RESULT_IDX
from hitl_async.errors import InvalidConfigError, InvalidUpdateError

if TYPE_CHECKING:
    from hitl_async._run import Run
    from hitl_async._task import Task

__all__ = ["cancel_thread", "update_state"]


async def update_state(run: Run, values: Any, as_node: str | None) -> dict[str, Any]:
    """Write `values` as if node `as_node` returned them, as a new checkpoint; returns its
    config."""
    await run.load()
    builder = run.graph.builder
    if as_node is not None and as_node not in builder.nodes and as_node != START:
        raise InvalidUpdateError(
            f"thread {run.thread_id!r}: update_state(as_node={as_node!r}) names an unknown "
            f"node; nodes are {sorted(builder.nodes)}"
        )
    if as_node is None and not run.exists:
        as_node = START
    at_head = run.head == run.cp.checkpoint_id  # False: forking a past checkpoint
    items = builder.schema.items(values, source="update_state")
    old_tasks = run.tasks
    new_values = dict(run.cp.values)
    if as_node is None:
        changed = run.plan.apply(new_values, items, source="update_state")
        next_specs = [t.spec for t in old_tasks]
    else:
        targets = await route(run.graph, as_node, items, new_values, (), run.config)
        finished = [(t.name, t.writes) for t in old_tasks if t.done]
        changed, routed = run.plan.step(new_values, [*finished, (as_node, items + targets)])
        # As in LangGraph, the update completes the paused step: only as_node's routes run next.
        next_specs = routed
    run.cp.values = new_values
    run.cp.versions = dict(run.cp.versions)
    run.cp.writes = {}
    run.dirty |= changed
    step = run.cp.step + 1 if run.exists else 0
    run.new_checkpoint("update", step, next_specs)
    run.prepare_tasks()
    records: list[WriteRecord] = []
    if as_node is None and at_head:
        records = _carried_over(run, old_tasks)
    await run.outbox.save(records)
    return run.config_for(run.cp.checkpoint_id)


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
            rows.append((INTERRUPT, list(old.raised)))
        if old.answers:
            rows.append((RESUME, list(old.answers.items())))
        if rows:
            records += write_records(new.id, rows, serde, new.name)
        for index, value in old.results.items():  # kept @task results stay kept
            new.results[index] = value
            blob = serde.dumps((index, value), channel=f"{new.name} task result")
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
