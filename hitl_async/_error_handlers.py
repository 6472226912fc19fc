"""Error handlers (`add_node(..., error_handler=...)`, `set_node_defaults(error_handler=...)`):
when a node fails (after its retries), its handler runs in the same superstep with the node's
input and an `error: NodeError`, as LangGraph schedules it; what the handler returns (an update,
a `Command` with `goto`) stands for the node's writes, and the node's own edges are not
followed. The failed node is reported failed (`tasks`/`debug` events), the handler as a task of
its own (`updates` and `tasks` events under `__error_handler__<node>`).

The task keeps the failed node's name and id in the step (write order, stored writes), so a
crash after the handler finished does not run either again. A handler that fails fails the run
(handlers are not handled); an interrupt, a drain or a `Command` to a parent graph is never
handled: they are not failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hitl_async._checkpoint import TaskSpec, task_id
from hitl_async._payloads import emit_task_result
from hitl_async._runtime import task_pad
from hitl_async._task import Task, execute, own_input
from hitl_async.constants import INTERRUPT
from hitl_async.errors import CheckpointerRequiredError, GraphBubbleUp, NodeError

if TYPE_CHECKING:
    from hitl_async._run import Run

__all__ = ["ERROR_SOURCE", "handle_failure", "resume_handlers", "routed_rows"]

ERROR_SOURCE = "__error_source_node__"
"""Pending write of a task whose node failed and whose handler failed too: `(node, repr of
the node's error)`, so that running the thread again runs the handler, not the node (as
LangGraph's marker of the same name)."""


def _failed_input(run: Run, t: Task, view: Callable[[], Any]) -> Any:
    """What the failed node was called with (its handler gets the same)."""
    if t.spec.push:
        return t.spec.arg
    spec = run.graph.builder.nodes[t.name]
    if spec.input_schema is not None:
        return own_input(run.graph, spec, run.cp.values, None)
    return view()


def _handled(run: Run, t: Task) -> str | None:
    """The error handler of `t`'s node if `t`'s failure is one it handles, else None."""
    spec = run.graph.builder.nodes.get(t.name)
    if spec is None or spec.error_handler is None:
        return None
    if isinstance(t.error, (GraphBubbleUp, CheckpointerRequiredError)):
        return None  # a pause, a drain, a Command to the parent: not failures
    return spec.error_handler


async def handle_failure(run: Run, t: Task, view: Callable[[], Any], step: int) -> None:
    """`t` failed: if its node has an error handler, run it and take its outcome as `t`'s."""
    name = _handled(run, t)
    if name is not None and t.error is not None:
        await _run_handler(run, t, name, view, step, NodeError(node=t.name, error=t.error))


async def resume_handlers(
    run: Run, runnable: list[Task], view: Callable[[], Any], step: int
) -> list[Task]:
    """Of a resumed step's tasks, run the handler of those whose node failed in an earlier run
    and whose handler failed then (the node does not run again, as in LangGraph); the tasks
    still to run. Its error is the stored text, in an `Exception`."""
    rest: list[Task] = []
    for t in runnable:
        source = next((v for c, v in t.writes if c == ERROR_SOURCE), None)
        spec = run.graph.builder.nodes.get(t.name)
        if source is None or spec is None or spec.error_handler is None:
            rest.append(t)
            continue
        t.writes = []
        error = NodeError(node=source[0], error=Exception(source[1]))
        await _run_handler(run, t, spec.error_handler, view, step, error)
        if t.done and run.saver is not None and run.durability != "exit":
            await run.outbox.persist([t])
    return rest


def routed_rows(t: Task) -> list[tuple[str, Any]]:
    """The `ERROR_SOURCE` write of a failed task, to store with its error."""
    return [w for w in t.writes if w[0] == ERROR_SOURCE]


async def _run_handler(
    run: Run, t: Task, name: str, view: Callable[[], Any], step: int, error: NodeError
) -> None:
    h = Task(
        task_id(run.cp.checkpoint_id, run.ns, t.index, name),
        t.index,
        TaskSpec(name, True, _failed_input(run, t, view)),
    )
    h.answers = t.answers  # (an interrupt in the handler is answered through the task)
    pad = task_pad(run, t, step, task_id=h.id, node=name, node_error=error)
    work = execute(run.graph, h, run.cp.values, view, pad, is_new=run.cp.parent_id is None)
    await (work if run.trace is None else run.trace.node(run, h, work))
    if run.modes:
        if h.finished_now:
            run.emit("updates", {name: h.update})
        elif h.pending:  # (paused on interrupt() in the handler)
            run.emit("updates", {INTERRUPT: h.pending})
        if "tasks" in run.modes or "debug" in run.modes:
            emit_task_result(run, h, step)
    t.error, t.raised = h.error, h.raised
    if h.done:
        t.writes, t.items, t.update = h.writes, h.items, h.update
        t.done = t.finished_now = True
    elif h.error is not None and not isinstance(h.error, GraphBubbleUp):
        t.writes = [(ERROR_SOURCE, (error.node, repr(error.error)))]
