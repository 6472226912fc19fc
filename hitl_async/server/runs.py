"""Runs: creating one (strict resume checks, multitask strategies) and cancelling it — from any
API process sharing the store; waiting for its end and reading its event log come from `RunLog`
(`run_log`)."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from hitl_async._checkpoint import now_iso
from hitl_async._input import is_interrupt_id
from hitl_async.checkpoint.base import RunRequest
from hitl_async.checkpoint.capabilities import RunQuery, run_order
from hitl_async.server.core import ServerCore
from hitl_async.server.errors import ApiError, conflict, not_found, unprocessable
from hitl_async.server.records import (
    ACTIVE_RUN_STATUSES,
    AssistantRecord,
    RunRecord,
    ThreadRecord,
    matches_filter,
)
from hitl_async.server.run_log import CANCEL_EVENT, END_EVENT, RunLog, cancel_key, end_key
from hitl_async.server.webhooks import check_webhook
from hitl_async.types import StreamMode

__all__ = [
    "RunOptions",
    "RunService",
    "check_assistant_ref",
    "engine_modes",
    "run_json",
    "stream_modes",
]

_STRATEGIES = frozenset({"reject", "enqueue", "interrupt", "rollback"})
_CLIENT_MODES = (
    "values",
    "updates",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
    "messages",
    "messages-tuple",
    "events",
)
_BUSY = (
    "Thread is already running a task. Wait for it to finish or choose a different "
    "multitask strategy."
)


def stream_modes(requested: Any) -> list[str]:
    """The client's `stream_mode` (a name or a list) checked; 422 naming the valid ones."""
    if requested is None:
        return ["values"]
    modes = [requested] if isinstance(requested, str) else list(requested)
    for mode in modes:
        if mode not in _CLIENT_MODES:
            raise unprocessable(
                f"stream_mode {mode!r} is not supported by hitl serve; supported: "
                f"{list(_CLIENT_MODES)}"
            )
    if "events" in modes and importlib.util.find_spec("langchain_core") is None:
        raise unprocessable(
            "stream_mode 'events' needs langchain-core on the server: pip install langchain-core"
        )
    return list(dict.fromkeys(modes))


def engine_modes(modes: Sequence[str]) -> list[str]:
    """The engine's stream modes behind the client's ("messages" only where the engine has it)."""
    known = set(getattr(StreamMode, "__args__", ()))
    out: list[str] = []
    for mode in modes:
        name = "messages" if mode.startswith("messages") else mode
        if name in known and name not in out:
            out.append(name)
    return out


@dataclass
class RunOptions:
    """A run request's body (LangGraph's `RunCreate`), as the routes parsed it."""

    assistant_id: str
    input: Any = None
    command: Mapping[str, Any] | None = None
    stream_mode: Any = None
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    metadata: Mapping[str, Any] | None = None
    config: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None
    checkpoint: Mapping[str, Any] | None = None
    checkpoint_id: str | None = None
    interrupt_before: Any = None
    interrupt_after: Any = None
    multitask_strategy: str | None = None
    if_not_exists: str | None = None
    on_disconnect: str | None = None
    on_completion: str | None = None
    after_seconds: float | None = None
    durability: str | None = None
    webhook: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run as the API answers it."""
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": run.assistant_id,
        "metadata": run.metadata,
        "status": run.status,
        "kwargs": run.kwargs,
        "multitask_strategy": run.multitask_strategy,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
    }


def _resume_problem(thread_id: str, resume: Any, pending: Sequence[str]) -> ApiError | None:
    """Why a resume cannot apply to the pending interrupt ids (None when it can)."""
    if not pending:
        return conflict(
            f"thread {thread_id} has no pending interrupt to resume",
            error="NoPendingInterruptError",
            thread_id=thread_id,
            pending=[],
        )
    if isinstance(resume, Mapping) and resume and all(is_interrupt_id(k) for k in resume):
        unknown = sorted(k for k in resume if k not in pending)
        if unknown:
            return conflict(
                f"thread {thread_id}: interrupt id(s) {unknown} are not pending; pending: "
                f"{list(pending)}",
                error="UnknownInterruptError",
                thread_id=thread_id,
                unknown=unknown,
                pending=list(pending),
            )
        return None
    if len(pending) > 1:
        return conflict(
            f"thread {thread_id} has {len(pending)} pending interrupts; resume with a map of "
            f"interrupt id to answer: {list(pending)}",
            error="AmbiguousResumeError",
            thread_id=thread_id,
            pending=list(pending),
        )
    return None


class RunService(RunLog):
    """Run operations over a `ServerCore`."""

    def __init__(self, core: ServerCore) -> None:
        self.core = core
        self.records = core.records

    async def create(
        self,
        thread_id: str | None,
        options: RunOptions,
        *,
        filters: Mapping[str, Any] | None = None,
        owner_metadata: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Store a run and queue it; the checks that refuse it change nothing."""
        check_assistant_ref(options.assistant_id, self.core.graphs)
        assistant = await self.core.assistant(options.assistant_id)
        modes = stream_modes(options.stream_mode)
        if options.webhook is not None:
            await check_webhook(options.webhook, self.core.webhooks)
        strategy = options.multitask_strategy or ("reject" if thread_id is None else "enqueue")
        if strategy not in _STRATEGIES:
            raise unprocessable(f"multitask_strategy must be one of {sorted(_STRATEGIES)}")
        if options.input is not None and options.command is not None:
            raise unprocessable("pass either input or command, not both")
        stateless = thread_id is None
        thread = await self._thread_for(thread_id, options, filters, owner_metadata, assistant)
        run_id = str(uuid.uuid4())
        now = now_iso()
        kwargs: dict[str, Any] = {
            "input": options.input,
            "command": dict(options.command) if options.command is not None else None,
            "config": dict(options.config or {}),
            "context": dict(options.context or {}),
            "stream_mode": modes,
            "interrupt_before": options.interrupt_before,
            "interrupt_after": options.interrupt_after,
            "subgraphs": options.stream_subgraphs,
            "resumable": True,
            "checkpoint": _checkpoint(options),
            "after_seconds": options.after_seconds or 0,
            "durability": options.durability or "async",
            "temporary": stateless and (options.on_completion or "delete") == "delete",
        }
        if options.webhook is not None:
            kwargs["webhook"] = options.webhook
        metadata = {  # (as LangGraph's server stamps a run: its assistant's, then the caller's)
            **assistant.metadata,
            "graph_id": assistant.graph_id,
            "assistant_id": assistant.assistant_id,
            **dict(options.metadata or {}),
        }
        run = RunRecord(
            run_id=run_id,
            thread_id=thread.thread_id,
            assistant_id=assistant.assistant_id,
            created_at=now,
            updated_at=now,
            metadata=metadata,
            kwargs=kwargs,
            multitask_strategy=strategy,
        )
        resume = (options.command or {}).get("resume")
        resuming = options.command is not None and resume is not None
        if strategy in ("interrupt", "rollback") and not resuming:
            for active in await self.records.active_runs(thread.thread_id):
                await self.cancel(active, action=strategy, rolled_into=run_id)
        if not await self.records.insert_run(run, exclusive=resuming or strategy == "reject"):
            raise conflict(_BUSY if not resuming else f"{_BUSY} (a resume never waits)")
        try:
            if resuming:
                await self._check_resume(thread, resume)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.records.delete_run(run_id)
            raise
        await self.records.append_event(
            run_id, "metadata", json.dumps({"run_id": run_id, "attempt": 1})
        )
        await self.core.run_queue.enqueue(
            RunRequest(
                id=run_id,
                queue=self.core.queue,
                thread_id=thread.thread_id,
                payload=json.dumps({"run_id": run_id}).encode(),
                created_at=now,
            )
        )
        return run

    async def _thread_for(
        self,
        thread_id: str | None,
        options: RunOptions,
        filters: Mapping[str, Any] | None,
        owner_metadata: Mapping[str, Any] | None,
        assistant: AssistantRecord,
    ) -> ThreadRecord:
        graph_id = assistant.graph_id
        tags = {"graph_id": graph_id, "assistant_id": assistant.assistant_id}
        if thread_id is None:
            return await self.core.create_thread(metadata={**(owner_metadata or {}), **tags})
        current = await self.records.get_thread(thread_id)
        if current is None:
            if options.if_not_exists != "create":
                raise not_found("Thread", thread_id)
            current = await self.core.create_thread(
                thread_id=thread_id, metadata={**(owner_metadata or {})}, if_exists="do_nothing"
            )
        if filters and not matches_filter(current.metadata, filters):
            raise not_found("Thread", thread_id)
        if any(current.metadata.get(k) != v for k, v in tags.items()):
            if current.metadata.get("graph_id") not in (None, graph_id):
                raise conflict(
                    f"thread {thread_id} belongs to graph {current.metadata['graph_id']!r}; "
                    f"assistant {options.assistant_id!r} runs graph {graph_id!r}"
                )

            def tag(record: ThreadRecord) -> ThreadRecord:
                record.metadata = {**record.metadata, **tags}
                return record

            updated = await self.records.update_thread(thread_id, tag)
            if updated is not None:
                current = updated
        return current

    async def _check_resume(self, thread: ThreadRecord, resume: Any) -> None:
        graph = self.core.graph_of_thread(thread)
        if graph is None:
            raise conflict(f"thread {thread.thread_id} has never run", pending=[])
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread.thread_id}})
        problem = _resume_problem(thread.thread_id, resume, [i.id for i in snapshot.interrupts])
        if problem is not None:
            raise problem

    async def get(self, thread_id: str | None, run_id: str) -> RunRecord:
        run = await self.records.get_run(run_id)
        if run is None or (thread_id is not None and run.thread_id != thread_id):
            raise not_found("Run", run_id)
        return run

    async def cancel(
        self, run: RunRecord, *, action: str = "interrupt", rolled_into: str | None = None
    ) -> RunRecord:
        """Stop a run: a pending one never starts; a running one is told through its log."""
        if run.status not in ACTIVE_RUN_STATUSES:
            return run

        def ask(current: RunRecord) -> RunRecord:
            current.cancel = current.cancel or action
            return current

        asked = await self.records.update_run(run.run_id, ask) or run
        if asked.status == "pending" and await self.core.run_queue.finish_request(
            run.run_id, None, "cancelled"
        ):

            def mark(current: RunRecord) -> RunRecord:
                current.status = "interrupted"
                current.updated_at = now_iso()
                return current

            updated = await self.records.update_run(run.run_id, mark)
            if updated is not None:
                self.records.remember_end(updated)
            await self.records.append_event(run.run_id, END_EVENT, "interrupted")
            await self.records.signal(end_key(run.run_id))
            if action == "rollback":
                await self.records.delete_run(run.run_id)
            return updated or asked
        await self.records.append_event(
            run.run_id, CANCEL_EVENT, json.dumps({"action": action, "by": rolled_into})
        )
        await self.records.signal(cancel_key(run.run_id))
        return asked

    async def cancel_many(
        self,
        *,
        thread_id: str | None,
        run_ids: Sequence[str] | None,
        status: str | None,
        action: str,
        filters: Mapping[str, Any] | None = None,
    ) -> int:
        """Stop the named runs of a thread, or every run in `status` (pending, running or
        all); 404 when none matches, as LangGraph's server answers. Returns how many."""
        if status is not None and (thread_id or run_ids):
            raise unprocessable(
                "When providing a 'status', 'thread_id' and 'run_ids' must be omitted. The "
                "'status' parameter cancels all runs with the given status, regardless of "
                "thread or run ID."
            )
        if status is None and not (thread_id and run_ids):
            raise unprocessable("Must provide either a status, or both 'thread_id' and 'run_ids'")
        if status is not None:
            wanted = ACTIVE_RUN_STATUSES if status == "all" else frozenset({status})
            found = [r for r in await self._queued_runs() if r.status in wanted]
        else:
            found = [
                r
                for r in [await self.records.get_run(i) for i in dict.fromkeys(run_ids or ())]
                if r is not None and r.thread_id == thread_id
            ]
        if filters:
            visible = []
            for run in found:
                thread = await self.records.get_thread(run.thread_id)
                if thread is not None and matches_filter(thread.metadata, filters):
                    visible.append(run)
            found = visible
        if not found:
            raise ApiError(404, "No runs found to cancel.")
        for run in found:
            await self.cancel(run, action=action)
        return len(found)

    async def _queued_runs(self) -> list[RunRecord]:
        """The runs the run queue holds as queued or running (the server's pending and
        running runs, on every thread)."""
        runs: list[RunRecord] = []
        for queue_status in ("queued", "running"):
            before = None
            while True:
                page = await self.core.run_queue.list_requests(
                    RunQuery(queue=self.core.queue, status=queue_status, before=before, limit=500)
                )
                for request in page:
                    run = await self.records.get_run(request.id)
                    if run is not None:
                        runs.append(run)
                if len(page) < 500:
                    break
                before = run_order(page[-1])
        return runs


def _checkpoint(options: RunOptions) -> dict[str, Any] | None:
    if options.checkpoint:
        return dict(options.checkpoint)
    if options.checkpoint_id:
        return {"checkpoint_id": options.checkpoint_id}
    return None


def check_assistant_ref(assistant_id: str, graphs: Mapping[str, Any]) -> None:
    """A run's assistant is an id or a graph's name; anything else is 422 naming both (as
    LangGraph's server: an unknown id is 404, an unknown name is not an id at all)."""
    if assistant_id in graphs:
        return
    try:
        uuid.UUID(assistant_id)
    except ValueError:
        raise unprocessable(
            f"Invalid assistant: {assistant_id!r}. Must be either:\n- A valid assistant UUID, "
            f"or\n- One of the registered graphs: {', '.join(graphs)}"
        ) from None
