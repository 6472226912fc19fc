"""The distributed side of a compiled graph: queued runs for `Worker`s (`submit`), the inbox of
interrupts waiting for a human, and cancelling a thread."""

from __future__ import annotations

from typing import Any

from hitl_async import _sync
from hitl_async._edits import cancel_thread
from hitl_async._graph_base import GraphBase
from hitl_async._run import Run
from hitl_async.checkpoint.capabilities import Capability, InboxStore, RunQueueStore
from hitl_async.errors import InvalidConfigError
from hitl_async.inbox import PendingInterrupt, list_pending
from hitl_async.runs import RunHandle, new_request
from hitl_async.telemetry import instrument_store, with_trace_context

__all__ = ["Coordination"]


class Coordination(GraphBase):
    """The run queue, inbox and cancel methods of `CompiledStateGraph`."""

    async def asubmit(
        self, input: Any, config: dict[str, Any], *, queue: str | None = None
    ) -> RunHandle:
        """Queue a run (input, or a `Command`) for a `Worker` of this graph; returns its handle."""
        saver = self._capable("submit()", Capability.RUN_QUEUE)
        assert isinstance(saver, RunQueueStore)
        config = self._config(config)
        thread_id = (config.get("configurable") or {}).get("thread_id")
        if not thread_id:
            raise InvalidConfigError("submit() needs config={'configurable': {'thread_id': ...}}")
        config = with_trace_context(config)  # the worker's run continues the caller's trace
        request = new_request(
            self.serde, queue or self.name, thread_id, input, config, graph=self.name
        )
        await instrument_store(saver).enqueue(request)
        return RunHandle(request.id, thread_id, saver, self.serde)

    def submit(self, input: Any, config: dict[str, Any], *, queue: str | None = None) -> RunHandle:
        """Synchronous `asubmit()` (the handle's methods are async)."""
        return _sync.run(lambda: self.asubmit(input, config, queue=queue))

    def handle(self, request_id: str, thread_id: str) -> RunHandle:
        """The handle of a run submitted earlier (e.g. by another process)."""
        saver = self._capable("handle()", Capability.RUN_QUEUE)
        assert isinstance(saver, RunQueueStore)
        return RunHandle(request_id, thread_id, saver, self.serde)

    async def ainbox(
        self,
        *,
        thread_id: str | None = None,
        node: str | None = None,
        due_before: float | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int = 100,
        all_graphs: bool = False,
    ) -> list[PendingInterrupt]:
        """Interrupts of this graph's threads waiting for a human, oldest first, from the index."""
        saver = self._capable("inbox()", Capability.INBOX)
        assert isinstance(saver, InboxStore)
        return await list_pending(
            saver,
            thread_id=thread_id,
            node=node,
            graph=None if all_graphs else self.name,
            due_before=due_before,
            after=after,
            limit=limit,
            serde=self.serde,
        )

    def inbox(self, **filters: Any) -> list[PendingInterrupt]:
        """Synchronous `ainbox()`."""
        return _sync.run(lambda: self.ainbox(**filters))

    async def acancel(self, config: dict[str, Any]) -> dict[str, Any]:
        """Cancel a thread: drop its pending tasks and interrupts (a checkpoint with source
        "cancel"); returns its config. A running thread is waited for up to 30 s."""
        self._require_saver("cancel()")
        run = Run(self, self._config(config), durability="sync")
        await run.claim(wait=30.0)
        try:
            return await cancel_thread(run)
        finally:
            await run.release()

    def cancel(self, config: dict[str, Any]) -> dict[str, Any]:
        """Synchronous `acancel()`."""
        return _sync.run(lambda: self.acancel(config))
