"""One superstep of a run: every task of the step runs concurrently; when all finished, their
writes are applied together through the reducers in task order (never finish order), and the
run moves to a new checkpoint. A step with a paused or failed task stores what finished.

Events are delivered as LangGraph does: a task's `updates`/`tasks`/`debug` events as it
finishes, `values`/`checkpoints` after the step; what tasks write themselves (`custom`) goes to
the stream as they write it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from hitl_async._cache import store_cached, use_cached
from hitl_async._checkpoint import NULL_TASK
from hitl_async._error_handlers import handle_failure, resume_handlers
from hitl_async._payloads import emit_checkpoint, emit_task_result, emit_task_start
from hitl_async._runtime import node_finished, task_pad
from hitl_async._task import execute
from hitl_async.constants import INTERRUPT, RESUME, START
from hitl_async.errors import (
    GraphBubbleUp,
    GraphDrained,
    GraphRecursionError,
    InvalidUpdateError,
    ParentCommand,
    StepTimeoutError,
)
from hitl_async.managed.base import StepWindow, managed_values

if TYPE_CHECKING:
    from hitl_async._run import Run
    from hitl_async._task import Task

__all__ = ["tick", "with_finished", "write_order"]


def write_order(tasks: Sequence[Task]) -> list[Task]:
    """The order a step's writes are applied in, LangGraph's: tasks triggered by edges by node
    name, then `Send`s in the order they were made (deterministic, never finish order)."""
    if len(tasks) == 1:
        return list(tasks)
    return sorted(tasks, key=lambda t: (t.spec.push, t.index if t.spec.push else 0, t.name))


@dataclass(slots=True)
class _Deadline:
    """When the step must have ended (the loop's clock, `run.step_timeout` after its tasks
    started), and which tasks missed it."""

    at: float
    cancelled: list[str] = field(default_factory=list)
    """Tasks cancelled at the deadline (async ones, or not started yet)."""
    late: bool = False
    """A task that cannot be cancelled (a sync node in its thread) ended after the deadline."""

    @property
    def missed(self) -> bool:
        return bool(self.cancelled) or self.late


def _hit(names: Sequence[str] | str | None, tasks: Sequence[Task]) -> bool:
    if not names:
        return False
    return any(t.name != START and (names == "*" or t.name in names) for t in tasks)


async def _pause_statically(run: Run) -> bool:
    """`interrupt_before`/`interrupt_after` hit: save and stop with no interrupt pending."""
    await run.outbox.save()
    run.interrupts = ()
    if run.parent is None:  # a subgraph's pause is reported by the root, as in LangGraph
        run.emit("updates", {INTERRUPT: ()})
    return False


async def tick(run: Run) -> bool:
    """Run one superstep; False when the run ended (finished or paused)."""
    tasks = run.tasks
    if not tasks:
        return False
    if run.events.live:
        await run.events.wait_room()  # a live consumer that is behind holds the run here
    step = run.cp.step + 1
    counts = len(tasks) > 1 or tasks[0].name != START
    if counts and run.steps_run >= run.limit:
        raise GraphRecursionError(
            f"Recursion limit of {run.limit} reached without hitting a stop condition: thread "
            f"{run.thread_id!r} ran {run.limit} supersteps without reaching END. If the loop is "
            "intended, raise it with config={'recursion_limit': N}; otherwise check the graph's "
            "conditional edges."
        )
    if run.before and not run.skip_before and _hit(run.before, [t for t in tasks if not t.done]):
        return await _pause_statically(run)
    if run.control.drain_requested:  # after the breakpoint check, as LangGraph
        await run.outbox.save()
        raise GraphDrained(run.control.drain_reason or "shutdown")
    run.skip_before = False
    rerun, run.rerun_waiting = run.rerun_waiting, False
    if counts:
        run.steps_run += 1
    runnable: list[Task] = []
    waiting: list[Task] = []  # paused, none of their interrupts answered: not run again
    for t in tasks:
        if not t.done:
            (waiting if t.waiting and not rerun else runnable).append(t)
    view_cache: list[Any] = []
    values = run.cp.values

    def view() -> Any:
        if not view_cache:
            state = run.plan.state_values(values)  # a fresh dict of the state keys only
            schema = run.graph.builder.schema
            if schema.managed:
                state.update(managed_values(schema.managed, StepWindow(run.steps_run, run.limit)))
            plain = schema.kind == "typeddict" and not schema.extra
            view_cache.append(state if plain else schema.view(state))
        return view_cache[0]

    if run.unsaved and run.durability != "exit":
        if run.durability == "async":
            await run.outbox.save_soon()
        else:
            await run.outbox.save()
    modes = run.modes
    if "updates" in modes and any(t.done and not t.finished_now for t in tasks):
        # Tasks that finished before the step was interrupted (or failed) are not run again;
        # their updates are shown again, marked cached, as LangGraph does.
        for t in tasks:
            if t.done and not t.finished_now and t.name != START:
                run.emit("updates", {t.name: t.update, "__metadata__": {"cached": True}})
    task_events = "tasks" in modes or "debug" in modes
    if task_events:
        for t in tasks:  # every task of the step, finished ones too, as LangGraph reports them
            if t.name != START:  # the input task is not reported, as in LangGraph
                emit_task_start(run, t, step, view())
    if run.graph.builder.error_handlers and run.cp.writes:  # (a step run again)
        runnable = await resume_handlers(run, runnable, view, step)
    if run.cache is not None:  # tasks whose writes are cached finish without running
        await use_cached(run, runnable, view)
        runnable = [t for t in runnable if not t.cached]
    deadline = None
    if run.step_timeout is not None and runnable:
        deadline = _Deadline(anyio.current_time() + run.step_timeout)
    if len(runnable) == 1:
        await _execute(run, runnable[0], view, step, False, alone=True, deadline=deadline)
    elif runnable:
        persist_each = run.saver is not None and run.durability != "exit"
        limit = run.config.get("max_concurrency")
        async with anyio.create_task_group() as tg:
            scopes: list[anyio.CancelScope] = []
            if limit and len(runnable) > limit:  # LangGraph's config["max_concurrency"]
                limiter = anyio.CapacityLimiter(limit)
                for t in runnable:
                    tg.start_soon(
                        _limited, limiter, run, t, view, step, persist_each, scopes, deadline
                    )
            else:
                for t in runnable:
                    tg.start_soon(
                        _execute, run, t, view, step, persist_each, False, scopes, deadline
                    )
    failed: Task | None = None
    incomplete = False
    for t in tasks:
        if not t.done:
            incomplete = True
            if t.error is not None:
                failed = t
                break
    if failed is not None and isinstance(failed.error, ParentCommand) and run.parent is not None:
        raise failed.error  # the parent graph's task runs the command
    if failed is not None and isinstance(failed.error, GraphDrained):  # a subgraph drained:
        drained, failed.error = failed.error, None  # its task is still to run, not failed
        await run.outbox.persist(tasks)
        raise drained
    if deadline is not None and deadline.missed and failed is None:
        # As LangGraph: the step does not complete; what its tasks wrote (or asked) is kept as
        # pending writes, so running the thread again runs only the cancelled tasks.
        await run.outbox.persist(tasks)
        assert run.step_timeout is not None
        raise StepTimeoutError(run.thread_id, step, run.step_timeout, deadline.cancelled)
    if incomplete:
        await run.outbox.persist(tasks, defer=failed is None)
        if failed is not None:
            assert failed.error is not None
            raise failed.error
        run.interrupts = tuple(i for _, i in run.pending())
        if not run.interrupts and run.parent is None:  # a subgraph paused at a breakpoint
            run.emit("updates", {INTERRUPT: ()})
        for t in waiting:  # not run again (partial resume): still asking, said once more
            _emit_interrupts(run, t)
            if task_events:
                emit_task_result(run, t, step)
        if "values" in modes and any((t.done and _state_writes(t)) or t.call_writes for t in tasks):
            run.emit("values", run.stream_values(with_finished(run)))
        return False
    await _complete(run, tasks, step)
    if run.after and _hit(run.after, tasks):
        return await _pause_statically(run)
    return bool(run.tasks)


async def _limited(
    limiter: anyio.CapacityLimiter,
    run: Run,
    t: Task,
    view: Callable[[], Any],
    step: int,
    persist: bool,
    siblings: list[anyio.CancelScope],
    deadline: _Deadline | None,
) -> None:
    """`_execute` once `limiter` has room: at most `max_concurrency` tasks of a step at once
    (one whose turn comes after the step's deadline does not start)."""
    async with limiter:
        if deadline is not None and anyio.current_time() >= deadline.at:
            deadline.cancelled.append(t.name)
            return
        await _execute(run, t, view, step, persist, False, siblings, deadline)


async def _execute(
    run: Run,
    t: Task,
    view: Callable[[], Any],
    step: int,
    persist: bool,
    alone: bool = False,
    siblings: list[anyio.CancelScope] | None = None,
    deadline: _Deadline | None = None,
) -> None:
    """Run one task of the step; report it as soon as it finished, paused or failed. A task
    that failed (not one that paused) cancels its async `siblings` still running, as LangGraph
    does: the step fails with its error at once, and the cancelled tasks run again on a retry
    (a sync node in its thread cannot be stopped: it finishes, and its writes are kept). The
    step's `deadline` (`step_timeout`) cancels an async task likewise; a sync one that ends
    after it is noted as late."""
    pad = task_pad(
        run,
        t,
        step,
        results=t.results,
        kept_writes=t.call_writes,
        save_result=partial(run.outbox.save_result, t),
        alone=alone,
    )
    t.error = None
    t.raised = None
    work = execute(run.graph, t, run.cp.values, view, pad, is_new=run.cp.parent_id is None)
    if siblings is None and deadline is None:  # alone in its step: nothing to cancel it
        await (work if run.trace is None else run.trace.node(run, t, work))
    else:
        spec = run.graph.builder.nodes.get(t.name)
        stoppable = spec is not None and spec.is_async
        with anyio.CancelScope(
            deadline=deadline.at if deadline is not None and stoppable else math.inf
        ) as scope:
            if siblings is not None and stoppable:
                siblings.append(scope)
            await (work if run.trace is None else run.trace.node(run, t, work))
        if deadline is not None and anyio.current_time() >= deadline.at:
            if scope.cancelled_caught:
                deadline.cancelled.append(t.name)
            else:
                deadline.late = True
        if scope.cancelled_caught:  # a sibling failed, or the deadline: still to run
            return
    if t.cache_key is not None:
        await store_cached(run, t)
    if t.finished_now and t.name != START:
        node_finished(run.config, t.name)
    if t.name != START and run.modes:
        if t.finished_now:
            run.emit("updates", {t.name: t.update})
        elif t.pending:  # (paused on interrupt() in this run)
            _emit_interrupts(run, t)
        if "tasks" in run.modes or "debug" in run.modes:
            emit_task_result(run, t, step)
        if pad.node_calls is not None:  # its @task calls that ended after it did
            for emit in pad.node_calls.late_events():
                emit()
        if run.events.live:
            await run.events.wait_room()
    if not t.done:  # failed: its node's error handler, if it has one, runs in its place
        await handle_failure(run, t, view, step)
    if persist and (t.done or t.raised is not None) and not t.persisted:
        await run.outbox.persist([t])
    if siblings is not None and _failed(t):
        for sibling in siblings:
            sibling.cancel()


def _failed(t: Task) -> bool:
    """The task failed (it did not pause or bubble a `Command` up to a parent graph)."""
    return t.error is not None and not isinstance(t.error, GraphBubbleUp)


def _emit_interrupts(run: Run, t: Task) -> None:
    """One task's pending interrupts, as LangGraph reports each interrupting task: an `updates`
    event, and a `values` event of the state as the step began with them."""
    pending = t.pending
    run.emit("updates", {INTERRUPT: pending})
    if "values" in run.modes:
        state = run.stream_values()
        run.emit("values", {**(state if isinstance(state, dict) else {}), INTERRUPT: pending})


def _state_writes(t: Task) -> bool:
    return any(c[:2] != "__" for c, _ in t.writes)


async def _complete(run: Run, tasks: Sequence[Task], step: int) -> None:
    """Apply the step's writes in task order and move to the next checkpoint."""
    values = dict(run.cp.values)
    writes = [(t.name, t.writes) for t in write_order(tasks)]
    run.last_tasks = tasks
    try:
        changed, next_tasks = run.plan.step(values, writes)
    except InvalidUpdateError as exc:
        await run.outbox.persist(tasks)
        raise InvalidUpdateError(f"thread {run.thread_id!r}, step {step}: {exc}") from exc
    run.cp.values = values
    run.cp.versions = dict(run.cp.versions)
    run.dirty |= changed
    # Writes of tasks not stored as pending writes, kept for history in the next header (in
    # `EngineCheckpoint.made_by`'s flat form, built inline: this runs every step), unless the
    # next checkpoint's changed channels tell them (one task, no reducer: the common case).
    # A resumed task's answers too (LangGraph keeps them as its `__resume__` write).
    made_by: list[Any] | None = None
    one = tasks[0] if len(tasks) == 1 and NULL_TASK not in run.cp.writes else None
    if run.saver is not None and not (
        one is not None
        and one.items is not None
        and not one.answers
        and run.plan.derivable(one.items)
    ):
        made_by = []
        for t in tasks:
            if not t.persisted:
                items = t.items if t.items is not None else t.state_writes()
                answered = bool(t.answers)
                made_by += (t.index, len(items) + answered)
                if answered:
                    made_by += (RESUME, list(t.answers.items()))
                for write in items:
                    made_by += write
    run.new_checkpoint("loop", step, next_tasks, made_by)
    if run.durability == "sync":
        await run.outbox.save()
    run.prepare_tasks()
    if "values" in run.modes and run.plan.step_shows(changed, writes):  # (none: no state written)
        run.emit("values", run.stream_values())
    emit_checkpoint(run)


def with_finished(run: Run, *, calls: bool = True) -> dict[str, Any]:
    """The checkpoint's values with the writes of its step's finished tasks applied: the
    state of a paused (or failed) step as `get_state()` and `invoke()` report it (in the
    step's write order, as LangGraph applies them there too); with `calls`, also what the
    finished `@task` calls of a paused node wrote (LangGraph's run output shows it, its
    `get_state()` does not)."""
    values = dict(run.cp.values)
    run.plan.apply(
        values,
        [(c, v) for t in write_order(run.tasks) for c, v in _kept(t, calls) if c[:2] != "__"],
        source="pending writes",
        strict=False,
    )
    return values


def _kept(t: Task, calls: bool) -> list[tuple[str, Any]]:
    """What a task of a step that did not complete has written for good: all its writes once
    it finished, else (with `calls`) those of its finished `@task` calls, kept with their
    results as LangGraph keeps the writes of those tasks of their own."""
    if t.done:
        return t.writes
    if not calls or not t.call_writes:
        return []
    return [w for _, writes in sorted(t.call_writes.items()) for w in writes]
