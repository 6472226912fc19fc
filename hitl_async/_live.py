"""Driving a run for a stream. `stream_run` delivers events as they happen: a superstep whose
events can only come at its end runs in the consumer's task, any other in a task of its own while
the consumer takes its events in batches (no switch per event). The next step starts only when
the consumer asks for more, so a run never gets ahead of its consumer by more than a step, as
with LangGraph. `run_inline` runs every step in the caller's task (for callers that take
everything anyway).

A consumer that stops early (leaves its `async for`, closes the generator, or lets it be
garbage-collected, even from another task) cancels the run: what can be stored is stored, the
lease is released, and the thread can be resumed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any

import anyio

from hitl_async._background import Background
from hitl_async._events import STREAM_MODES, Delivery

if TYPE_CHECKING:
    from hitl_async._events import Event
    from hitl_async._run import Run

__all__ = ["run_inline", "stream_run"]


def _liveness(run: Run) -> tuple[bool, bool]:
    """Whether every step of `run` can emit events before it ends, and whether a step with
    several tasks can (each reports as it finishes)."""
    kinds = {STREAM_MODES[mode] for mode in run.modes}
    # With subgraphs=True a subgraph's steps end inside one of this run's tasks.
    always = Delivery.WHILE_RUNNING in kinds or (bool(kinds) and run.events.subgraphs)
    return always, always or Delivery.TASK_END in kinds


def _live_step(run: Run, always: bool, with_several: bool) -> bool:
    """Whether the next step can emit events before it ends."""
    if always or not with_several or len(run.tasks) < 2:
        return always
    return sum(1 for t in run.tasks if not t.done) > 1


async def stream_run(
    run: Run, input: Any, wait: float, shape: Callable[[list[Event]], list[Any]]
) -> AsyncGenerator[list[Any], None]:
    """Run `run`, yielding its events in batches as they happen, each batch passed through
    `shape`; raise what the run raised."""
    events = run.events
    always, with_several = _liveness(run)
    step: Background[bool] | None = None
    completed = False

    async def tick() -> bool:
        try:
            return await run.tick()
        finally:
            events.end()

    try:
        await run.start(input, wait=wait)
        while True:
            if batch := events.take():
                yield shape(batch)
            if _live_step(run, always, with_several):
                events.go_live()
                step = Background(tick)
                while (arrived := await events.next_batch()) is not None:
                    yield shape(arrived)
                await step.wait()
                finished, step = step, None
                if finished.error is not None:
                    raise finished.error
                more = finished.result
            else:
                more = await run.tick()
            if not more:
                break
        await run.finish(release=True)
        completed = True
        if batch := events.take():
            yield shape(batch)
    finally:
        events.close()
        if step is not None:  # the consumer left while a step ran: cancel it, wait for it
            step.cancel()
            with anyio.CancelScope(shield=True):
                await step.wait()
        if not completed:
            await run.abandon()


async def run_inline(
    run: Run, input: Any, wait: float, shape: Callable[[list[Event]], list[Any]]
) -> AsyncGenerator[list[Any], None]:
    """Run in the caller's task; yield the events of each step after it, through `shape`."""
    events = run.events
    completed = False
    try:
        await run.start(input, wait=wait)
        while True:
            if batch := events.take():
                yield shape(batch)
            if not await run.tick():
                break
        await run.finish(release=True)
        completed = True
        if batch := events.take():
            yield shape(batch)
    finally:
        if not completed:
            await run.abandon()
