"""What `get_state()` and `get_state_history()` show of a checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hitl_async._payloads import subgraph_config
from hitl_async._superstep import with_finished
from hitl_async._task import listed_order, task_result
from hitl_async.types import PregelTask, StateSnapshot

if TYPE_CHECKING:
    from hitl_async._run import Run

__all__ = ["snapshot"]


def snapshot(
    run: Run,
    *,
    at_head: bool = True,
    made: dict[int, list[tuple[str, Any]]] | None = None,
) -> StateSnapshot:
    """The run's current checkpoint as `get_state()` reports it.

    At the head, writes of tasks that finished in an unfinished step show in `values` and those
    tasks leave `next`; an older checkpoint shows its step as it began. `made`: the writes of
    its tasks kept in its child's header (history), shown as their `result`.
    """
    if not run.exists:
        return StateSnapshot({}, (), run.config, None, None, None, (), ())
    values = with_finished(run, calls=False) if at_head else run.cp.values
    shown = listed_order(run.tasks, run.graph.builder.nodes)
    root = run.graph.builder.schema.is_root
    tasks = tuple(
        PregelTask(
            id=t.id,
            name=t.name,
            path=t.path,
            error=t.error_text,
            interrupts=t.pending,
            state=subgraph_config(run, t.name, t.id),
            result=(
                task_result(t.writes, root=root)
                if t.done
                else task_result(made[t.index], root=root)
                if made and t.index in made
                else None
            ),
        )
        for t in shown
    )
    cp = run.cp
    return StateSnapshot(
        values=run.graph.builder.schema.present(run.plan.state_values(values)),
        next=tuple(t.name for t in shown if not (t.done and at_head)),
        config=run.config_for(cp.checkpoint_id),
        metadata=dict(cp.metadata),
        created_at=cp.created_at,
        parent_config=run.config_for(cp.parent_id) if cp.parent_id else None,
        tasks=tasks,
        interrupts=tuple(i for _, i in run.pending()),
    )
