"""How the body of a node, an `@entrypoint` or a `@task` runs: an async body is awaited in the
run's loop, a sync body in a worker thread so it never blocks the loop. This is the one place
that decides (e.g. to run a lone sync task inline instead).

While a live stream's buffer is full, an async body is paused at its next `await` until the
consumer catches up, so a fast producer cannot outgrow the buffer; a worker thread waits in the
write itself (`RunEvents.put`)."""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

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
) -> Any:
    """Call `fn(*args, **kwargs)` the way its kind runs; `events`: the run's, to pace by."""
    if is_async:
        coro = fn(*args, **kwargs)
        if events is not None and events.live:
            return await _paced(coro, events)
        return await coro
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


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
