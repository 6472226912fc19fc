"""`RunExecutor`: executes the server's queued runs (in `hitl serve` or `hitl worker --config`),
writing each streamed event to the run's log (`stream_to_log`, in `streaming`), which carries it
to the API process streaming it.

It is a `hitl_async.Worker` over the server's queue: each run is claimed by one process, a thread
never runs two at once, a process that dies leaves its claim to expire and another takes over.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from hitl_async._checkpoint import now_iso
from hitl_async.errors import ResumeError, ThreadBusyError
from hitl_async.server.encoding import dumps, to_command
from hitl_async.server.errors import ApiError
from hitl_async.server.records import RunRecord, ThreadRecord
from hitl_async.server.run_log import END_EVENT, cancel_key, end_key
from hitl_async.server.runs import run_json
from hitl_async.server.streaming import stream_to_log
from hitl_async.server.webhooks import send_webhook
from hitl_async.worker import Worker

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import RunRequest
    from hitl_async.server.core import ServerCore

__all__ = ["RunExecutor"]

log = logging.getLogger("hitl_async.server")


class _Cancelled(Exception):
    def __init__(self, action: str) -> None:
        super().__init__(action)
        self.action = action


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _webhook_payload(run: RunRecord, values: Any, error: Any) -> dict[str, Any]:
    """What a run's webhook receives, as LangGraph's server sends it: the run, its final
    status and the thread's values (and the error of a failed run)."""
    payload = {
        **run_json(run),
        "run_started_at": run.created_at,
        "run_ended_at": run.updated_at,
        "webhook_sent_at": now_iso(),
        "values": values,
    }
    if error is not None:
        payload["error"] = error
    return payload


class RunExecutor(Worker):
    """Serve the server's run queue: `await RunExecutor(core, concurrency=N).run()`."""

    def __init__(self, core: ServerCore, **options: Any) -> None:
        first = next(iter(core.graphs.values()))
        super().__init__(first, queue=core.queue, **options)
        self.core = core
        self.records = core.records

    async def run_duties(self) -> None:
        """Recover dead runs and fire passed deadlines of every graph."""
        for graph in self.core.graphs.values():
            self.graph = graph
            try:
                for thread_id in await self.recover():
                    await self.core.refresh_thread(thread_id)
                await self.fire_deadlines()
            except Exception:
                log.exception("server duties failed for graph %s", graph.name)

    async def execute(self, request: RunRequest) -> None:
        try:
            run_id = json.loads(request.payload)["run_id"]
        except (ValueError, KeyError, TypeError):
            await self.queue_store.finish_request(
                request.id, self.owner, "failed", error="bad payload"
            )
            return
        run = await self.records.get_run(run_id)
        if run is None or run.status not in ("pending", "running"):
            await self.queue_store.finish_request(request.id, self.owner, "done")
            return
        if run.cancel:
            await self._finish(run, request, "interrupted")
            return
        try:
            graph = self.core.graph((await self.core.assistant(run.assistant_id)).graph_id)
        except ApiError:
            graph = None
        if graph is None:
            await self._finish(
                run,
                request,
                "error",
                error={
                    "error": "GraphNotFound",
                    "message": f"no graph for assistant {run.assistant_id}",
                },
            )
            return
        status, error, output = "success", None, None
        try:
            output = await self._run(run, graph)
        except Exception as raised:
            exc = _unwrap(raised)
            if isinstance(exc, ThreadBusyError):
                await self._back_to_queue(run, request)
                return
            if isinstance(exc, _Cancelled):
                status = "interrupted"
                if exc.action == "rollback":
                    await self._rollback(run, graph)
            else:
                log.error("run %s on thread %s failed", run.run_id, run.thread_id, exc_info=exc)
                status, error = "error", {"error": type(exc).__name__, "message": str(exc)}
        await self._finish(run, request, status, error=error, output=output, graph=graph)

    async def _back_to_queue(self, run: RunRecord, request: RunRequest) -> None:
        def back(current: RunRecord) -> RunRecord:
            current.status = "pending"
            return current

        await self.records.update_run(run.run_id, back)
        await anyio.sleep(min(self.poll, 0.2))
        await self.queue_store.finish_request(request.id, self.owner, "queued")

    async def _finish(
        self,
        run: RunRecord,
        request: RunRequest,
        status: str,
        *,
        error: Any = None,
        output: Any = None,
        graph: Any = None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            if error is not None:
                await self.records.append_event(run.run_id, "error", dumps(error))
            thread = await self.core.refresh_thread(
                run.thread_id, failed=status == "error", error=error, graph=graph
            )
            if output is None and thread is not None and status != "error":
                output = thread.values
                pending = [i for group in thread.interrupts.values() for i in group]
                if pending and isinstance(output, dict):
                    output = {**output, "__interrupt__": pending}

            def done(current: RunRecord) -> RunRecord:
                current.status = status
                current.error = error
                current.output = output
                current.updated_at = now_iso()
                return current

            final = await self.records.update_run(run.run_id, done)
            if final is not None:
                self.records.remember_end(final)
            async with anyio.create_task_group() as ending:  # the record is final: all at once
                ending.start_soon(
                    self.queue_store.finish_request,
                    request.id,
                    self.owner,
                    "failed" if status == "error" else "done",
                )
                ending.start_soon(self.records.signal, end_key(run.run_id))
                await self.records.append_event(run.run_id, END_EVENT, status)
            if run.kwargs.get("temporary"):
                await self.saver.delete_thread(run.thread_id)
                await self.records.delete_thread(run.thread_id, keep_runs=True)
            webhook = run.kwargs.get("webhook")
            if webhook:
                values = thread.values if thread is not None else None
                await send_webhook(
                    webhook, _webhook_payload(final or run, values, error), self.core.webhooks
                )

    async def _run(self, run: RunRecord, graph: Any) -> Any:
        """Stream the run into its log; raises `_Cancelled` when asked to stop."""

        def start(current: RunRecord) -> RunRecord:
            current.status = "running"
            current.attempt += 1
            current.updated_at = now_iso()
            return current

        kwargs = run.kwargs
        cancel: list[str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_cancel, run.run_id, tg.cancel_scope, cancel)
            await self._wait_until_due(run)
            busy: list[ThreadRecord | None] = []

            async def mark_busy() -> None:
                busy.append(await self.core.set_thread_status(run.thread_id, "busy"))

            async with anyio.create_task_group() as marking:  # both writes in one wait
                marking.start_soon(mark_busy)
                started = await self.records.update_run(run.run_id, start)
            if started is not None:
                run = started
            if run.cancel:  # asked to stop before the watcher listened
                cancel.append(run.cancel)
                tg.cancel_scope.cancel()
                await anyio.sleep(0)
            thread = busy[0] if busy else None
            config = await self._config(run, graph, thread)
            command = kwargs.get("command")
            run_input = to_command(command) if command is not None else kwargs.get("input")
            if run.attempt > 1 and await self._stored_checkpoint_of(run):
                run_input = None  # a process died mid-run: continue from its last checkpoint
            try:
                await stream_to_log(
                    self.records, run, graph, run_input, config, await self._context(run)
                )
            except ResumeError:
                if run.attempt <= 1:
                    raise
                await stream_to_log(  # its answers were recorded
                    self.records, run, graph, None, config, await self._context(run)
                )
            tg.cancel_scope.cancel()
        if cancel:
            raise _Cancelled(cancel[0])
        return None

    async def _stored_checkpoint_of(self, run: RunRecord) -> bool:
        """Whether an earlier attempt of the run already stored a checkpoint."""
        found = await self.saver.history(run.thread_id, filter={"run_id": run.run_id}, limit=1)
        return bool(found)

    async def _wait_until_due(self, run: RunRecord) -> None:
        delay = float(run.kwargs.get("after_seconds") or 0)
        if delay <= 0:
            return
        created = datetime.fromisoformat(run.created_at).timestamp()
        left = created + delay - time.time()
        if left > 0:
            await anyio.sleep(left)

    async def _watch_cancel(self, run_id: str, scope: anyio.CancelScope, out: list[str]) -> None:
        """Cancel `scope` once the run record says to stop (a `cancel:{run_id}` signal wakes
        us; without one we look every `poll_interval` seconds, when the store says another
        process may have written)."""
        seen: object = None
        with self.records.waiters.subscribe(cancel_key(run_id)) as asked:
            while True:  # execute() read the record just before: wait first
                with anyio.move_on_after(max(self.records.poll_interval, 0.5)):
                    await asked.wait()
                if not asked.take():
                    changed, seen = await self.records.others_wrote(seen)
                    if not changed:
                        continue
                run = await self.records.get_run(run_id)
                if run is None or run.cancel:
                    out.append(run.cancel if run is not None and run.cancel else "interrupt")
                    scope.cancel()
                    return

    async def _config(
        self, run: RunRecord, graph: Any, thread: ThreadRecord | None
    ) -> dict[str, Any]:
        assistant = await self.core.assistant(run.assistant_id)
        base = dict(assistant.config)
        given = dict(run.kwargs.get("config") or {})
        config: dict[str, Any] = {**base, **given}
        conf = {
            **(base.get("configurable") or {}),
            **(given.get("configurable") or {}),
            "thread_id": run.thread_id,
            "run_id": run.run_id,
            "graph_id": graph.name,
            "assistant_id": run.assistant_id,
        }
        checkpoint = run.kwargs.get("checkpoint") or {}
        if checkpoint.get("checkpoint_id"):
            conf["checkpoint_id"] = checkpoint["checkpoint_id"]
        config["configurable"] = conf
        config["metadata"] = {
            **(thread.metadata if thread is not None else {}),
            **(given.get("metadata") or {}),
            **run.metadata,
            "graph_id": graph.name,
            "assistant_id": run.assistant_id,
            "run_id": run.run_id,
            "thread_id": run.thread_id,
            "run_attempt": run.attempt,
        }
        return config

    async def _context(self, run: RunRecord) -> dict[str, Any] | None:
        """The run's context over its assistant's."""
        assistant = await self.core.assistant(run.assistant_id)
        return {**assistant.context, **(run.kwargs.get("context") or {})} or None

    async def _rollback(self, run: RunRecord, graph: Any) -> None:
        """Undo what a run rolled back by a newer one wrote: its checkpoints are forked away
        from, and its record deleted."""
        written = await self.saver.history(run.thread_id, filter={"run_id": run.run_id})
        if written:
            start = written[-1].record.parent_id
            if start is None:
                await self.saver.delete_thread(run.thread_id)
            else:
                await graph.aupdate_state(
                    {"configurable": {"thread_id": run.thread_id, "checkpoint_id": start}}, None
                )
        await self.records.delete_run(run.run_id)
