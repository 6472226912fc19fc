"""Queued runs: `graph.asubmit(input, config)` stores a run request and returns a `RunHandle`;
a `Worker` in any process sharing the store executes it once."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from hitl_async._checkpoint import now_iso
from hitl_async.checkpoint.base import RunRequest
from hitl_async.checkpoint.capabilities import ChangeFeed
from hitl_async.errors import HitlError

if TYPE_CHECKING:
    from hitl_async.checkpoint.capabilities import RunQueueStore
    from hitl_async.serde import Serializer

__all__ = ["RunCancelledError", "RunFailedError", "RunHandle", "new_request"]

FINAL = frozenset({"done", "failed", "cancelled"})


class RunFailedError(HitlError):
    """The queued run raised; `error` is the worker's description of the exception."""

    def __init__(self, request_id: str, thread_id: str, error: str | None) -> None:
        self.request_id = request_id
        self.thread_id = thread_id
        self.error = error
        super().__init__(f"run {request_id!r} on thread {thread_id!r} failed: {error}")


class RunCancelledError(HitlError):
    """The queued run was cancelled before a worker took it."""

    def __init__(self, request_id: str, thread_id: str) -> None:
        self.request_id = request_id
        self.thread_id = thread_id
        super().__init__(f"run {request_id!r} on thread {thread_id!r} was cancelled")


def new_request(
    serde: Serializer,
    queue: str,
    thread_id: str,
    input: Any,
    config: dict[str, Any],
    graph: str | None = None,
) -> RunRequest:
    """A queued request carrying the input, the run's config and the graph it is for."""
    body: dict[str, Any] = {"input": input, "config": config}
    if graph is not None:
        body["graph"] = graph
    return RunRequest(
        id=uuid.uuid4().hex,
        queue=queue,
        thread_id=thread_id,
        payload=serde.dumps(body, channel="run request"),
        created_at=now_iso(),
    )


@dataclass
class RunHandle:
    """A run waiting in (or taken from) the queue."""

    id: str
    thread_id: str
    saver: RunQueueStore
    serde: Serializer

    async def request(self) -> RunRequest:
        found = await self.saver.get_request(self.id)
        if found is None:
            raise HitlError(f"run request {self.id!r} is not in the store")
        return found

    async def status(self) -> str:
        """queued, running, done, failed or cancelled."""
        return (await self.request()).status

    async def cancel(self) -> bool:
        """Cancel the run if no worker has taken it yet; whether it was cancelled."""
        return await self.saver.finish_request(self.id, None, "cancelled")

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to end and return what `ainvoke` returned for it.

        Raises `RunFailedError` or `RunCancelledError`, or `TimeoutError` after `timeout`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.01
        while True:
            req = await self.request()
            if req.status == "done":
                return self.serde.loads(req.result) if req.result is not None else None
            if req.status == "failed":
                raise RunFailedError(self.id, self.thread_id, req.error)
            if req.status == "cancelled":
                raise RunCancelledError(self.id, self.thread_id)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"run {self.id!r} on thread {self.thread_id!r} is still {req.status} after "
                    f"{timeout} s"
                )
            left = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            with anyio.move_on_after(min(pause, left)):
                if isinstance(self.saver, ChangeFeed):
                    await self.saver.wait_for_change(self.thread_id, min(pause, left))
                else:
                    await anyio.sleep(min(pause, left))
            pause = min(pause * 2, 0.5)
