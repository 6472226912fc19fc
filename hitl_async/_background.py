"""A task that runs beside the code that started it, not inside its scope: an asyncio `Task`,
or under trio a system task. Its outcome is captured (never raised into the event loop), and it
can be cancelled and awaited from any task of the same loop.

A streamed run needs this: the consumer's async generator may be advanced and closed from
different tasks (the sync facade's portal calls, a garbage-collected generator finalized by the
loop), and a task group held open across its `yield`s breaks when that happens."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

__all__ = ["Background"]

T = TypeVar("T")


class Background(Generic[T]):
    """`fn()` running in a task of its own: `result` is what it returned, `error` what it
    raised (None: it returned)."""

    __slots__ = ("_handle", "_scope", "done", "error", "result")

    def __init__(self, fn: Callable[[], Awaitable[T]]) -> None:
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = anyio.Event()
        self._scope = anyio.CancelScope()
        native = anyio.lowlevel.current_token().native_token
        context = contextvars.copy_context()
        self._handle: Any
        if isinstance(native, asyncio.AbstractEventLoop):
            # A strong reference: the loop keeps only a weak one to its tasks.
            self._handle = native.create_task(self._main(fn), context=context)
        else:
            import trio

            self._handle = trio.lowlevel.spawn_system_task(self._main, fn, context=context)

    async def _main(self, fn: Callable[[], Awaitable[T]]) -> None:
        try:
            with self._scope:
                self.result = await fn()
        except BaseException as exc:  # delivered to whoever waits; a system task must not raise
            self.error = exc
        finally:
            self.done.set()

    def cancel(self) -> None:
        """Cancel the task (its cleanup still runs: shielded code finishes)."""
        self._scope.cancel()

    async def wait(self) -> None:
        """Until the task ended, however it ended."""
        await self.done.wait()
