"""How the body of a node, an `@entrypoint` or a `@task` runs: an async body is awaited in the
run's loop; a sync body in a worker thread so it never blocks the loop, except a lone node of a
step run through the sync API (`invoke`/`stream`): that one runs in the calling thread, whose
loop has nothing else to do meanwhile (`_sync.Driver.call`: no thread round trip). This is the
one place that decides.

While a live stream's buffer is full, an async body is paused at its next `await` until the
consumer catches up, so a fast producer cannot outgrow the buffer; a worker thread waits in the
write itself (`RunEvents.put`)."""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from hitl_async._sync import inline_driver
from hitl_async._workers import run_sync

if TYPE_CHECKING:
    from hitl_async._events import RunEvents

__all__ = ["call_body"]

T = TypeVar("T")


async def call_body(
    fn: Callable[..., Any],
    is_async: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    events: RunEvents | None,
    alone: bool = False,
) -> Any:
    """Call `fn(*args, **kwargs)` the way its kind runs; `events`: the run's, to pace by;
    `alone`: the only task of its step (a sync body may then run in the loop's thread)."""
    if is_async:
        coro = fn(*args, **kwargs)
        if events is not None and events.live:
            return await _paced(coro, events)
        return await coro
    if alone and (events is None or not events.live):
        # Not while a live stream delivers: the consumer shares this thread.
        driver = inline_driver()
        if driver is not None:
            return await driver.call(partial(fn, *args, **kwargs))
    return await run_sync(partial(fn, *args, **kwargs))


@types.coroutine
def _paced(coro: Coroutine[Any, Any, T], events: RunEvents) -> Generator[Any, Any, T]:
    """Drive `coro` as the event loop would, and before resuming it after a suspension wait
    (shielded) while the stream's buffer is full. Transparent to asyncio and trio: every value
    the loop sends or throws goes to `coro` unchanged."""
    send: Any = None
    error: BaseException | None = None
    while True:
        try:
            yielded = coro.send(send) if error is None else coro.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        send, error = None, None
        try:
            send = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            error = exc
            continue
        if events.full:
            try:
                yield from _room(events)
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # not expected while shielded; hand it to the body
                error = exc


def _room(events: RunEvents) -> Generator[Any, Any, None]:
    """Wait, shielded, until the buffer has room (or the stream closed)."""
    return _shielded(events.wait_room).__await__()


async def _shielded(wait: Callable[[], Awaitable[None]]) -> None:
    with anyio.CancelScope(shield=True):
        await wait()
