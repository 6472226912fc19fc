"""`Worker`: executes queued runs of one graph, recovers runs whose process died, and answers
interrupts whose deadline passed. Run as many workers, in as many processes, as you like: each
request runs once, and a thread never has two writers."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from hitl_async.checkpoint.capabilities import (
    Capability,
    InboxQuery,
    InboxStore,
    RunQueueStore,
    require,
)
from hitl_async.checkpoint.retry import OutageLog, retry_while_unavailable
from hitl_async.errors import (
    InvalidConfigError,
    ResumeError,
    StoreUnavailableError,
    ThreadBusyError,
)
from hitl_async.store.sweeper import sweeper_for
from hitl_async.telemetry import get_logger, instrument_store
from hitl_async.types import CANCEL, Command

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver, RunRequest
    from hitl_async.graph.compiled import CompiledStateGraph

__all__ = ["Worker"]

log = get_logger("hitl_async.worker")

_T = TypeVar("_T")
_MAX_BACKOFF = 5.0  # longest pause between two tries while the store is down (s)


class Worker:
    """Serve `graph`'s run queue: `await Worker(graph).run()` until stopped.

    `concurrency` runs at once; every `poll` seconds (and whenever the queue signals work) it
    claims requests, recovers threads whose lease expired mid-run, and resumes interrupts whose
    deadline passed with their `on_timeout` answer. `stop()` (or cancelling `run`) finishes the
    runs in progress for up to `grace` seconds, then gives unfinished requests back.

    Poison requests never stop a worker: a request whose payload cannot be decoded, or that was
    submitted for another graph, is marked failed with the reason (`RunHandle.status()` is
    "failed", `result()` raises `RunFailedError` saying why) and the worker goes on. A request
    claimed more than `max_attempts` times without finishing (each worker that took it died or
    lost its claim: it crashes its process) is quarantined: marked failed, never run again.
    """

    def __init__(
        self,
        graph: CompiledStateGraph,
        *,
        queue: str | None = None,
        concurrency: int = 4,
        claim_ttl: float = 30.0,
        poll: float = 1.0,
        grace: float = 30.0,
        owner: str | None = None,
        max_attempts: int = 5,
    ) -> None:
        saver = graph.checkpointer
        if saver is None:
            raise InvalidConfigError(
                "a Worker needs a graph compiled with a checkpointer that supports leases and a "
                "run queue: InMemorySaver() or hitl_async.connect('sqlite:///…' | "
                "'postgresql://…' | 'redis://…')"
            )
        require(
            saver, Capability.LEASES, Capability.INBOX, Capability.RUN_QUEUE, needed_for="Worker"
        )
        assert isinstance(saver, RunQueueStore) and isinstance(saver, InboxStore)
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.graph = graph
        self.saver: BaseSaver = instrument_store(saver)
        self.queue_store: RunQueueStore = saver
        self.inbox_store: InboxStore = saver
        self.max_attempts = max_attempts
        self.queue = queue or graph.name
        self.concurrency = concurrency
        self.claim_ttl = claim_ttl
        self.poll = poll
        self.grace = grace
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.processed = 0
        self._stopping = anyio.Event()
        self._slots = anyio.Semaphore(concurrency)
        self.store_sweeper = sweeper_for(getattr(graph, "store", None))
        """Deletes expired items of the graph's long-term store (`compile(store=...)`)."""
        self._outage = OutageLog(log, f"worker {self.owner}")

    async def _store(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """A store call that waits out an outage (backoff, one log line per outage) until the
        store is back or the worker stops."""
        return await retry_while_unavailable(
            call, self._outage, max_wait=_MAX_BACKOFF, give_up=self._stopping.is_set
        )

    def stop(self) -> None:
        """Ask `run()` to stop taking work and return once the runs in progress end."""
        self._stopping.set()

    async def run(self, *, max_requests: int | None = None) -> None:
        """Serve until `stop()` (or until `max_requests` requests were processed)."""
        last_duties = 0.0
        async with anyio.create_task_group() as runs:
            while not self._stopping.is_set():
                if max_requests is not None and self.processed >= max_requests:
                    break
                now = time.monotonic()
                if now - last_duties >= self.poll:
                    last_duties = now
                    await self.run_duties()
                await self._slots.acquire()
                try:
                    request = await self._store(
                        lambda: self.queue_store.claim_request(
                            self.queue, self.owner, self.claim_ttl
                        )
                    )
                except StoreUnavailableError:
                    self._slots.release()
                    break  # (only once stopping: until then the outage is waited out)
                except BaseException:
                    self._slots.release()
                    raise
                if request is None:
                    self._slots.release()
                    with anyio.move_on_after(self.poll):
                        async with anyio.create_task_group() as waiting:
                            waiting.start_soon(self._wake_on_stop, waiting.cancel_scope)
                            try:
                                await self.queue_store.wait_for_work(self.queue, self.poll)
                            except StoreUnavailableError as exc:
                                self._outage.failed(exc)
                                await anyio.sleep(self.poll)
                            waiting.cancel_scope.cancel()
                    continue
                runs.start_soon(self._serve, request)
            with anyio.move_on_after(self.grace) as grace:
                await self._drain()
            if grace.cancelled_caught:
                runs.cancel_scope.cancel()

    async def _wake_on_stop(self, scope: anyio.CancelScope) -> None:
        await self._stopping.wait()
        scope.cancel()

    async def _drain(self) -> None:
        for _ in range(self.concurrency):
            await self._slots.acquire()
        for _ in range(self.concurrency):
            self._slots.release()

    async def _serve(self, request: RunRequest) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_claim, request.id, tg.cancel_scope)
                await self.execute(request)
                tg.cancel_scope.cancel()
        except Exception:
            # Never let one request stop the worker (its claim lapses and it is retried).
            log.exception(
                "run %s on thread %s: the worker could not process it",
                request.id,
                request.thread_id,
            )
        finally:
            self.processed += 1
            self._slots.release()

    async def _keep_claim(self, request_id: str, scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(self.claim_ttl / 3)
            try:
                held = await self.queue_store.renew_claim(request_id, self.owner, self.claim_ttl)
            except StoreUnavailableError as exc:
                self._outage.failed(exc)  # (the run goes on; the next renewal may succeed)
                continue
            if not held:
                log.warning("lost the claim on run %s", request_id)
                return

    async def execute(self, request: RunRequest) -> None:
        """Run one claimed request and record its outcome."""
        if request.attempts > self.max_attempts:
            await self._fail(
                request,
                f"quarantined after {request.attempts - 1} attempts: every worker that took "
                "this request died or lost its claim before finishing it (it may crash its "
                f"process); it is not run again (Worker(max_attempts={self.max_attempts}))",
            )
            return
        serde = self.graph.serde
        body = self._decode(request)
        if isinstance(body, str):
            await self._fail(request, f"not run: {body}")
            return
        config: dict[str, Any] = dict(body.get("config") or {})
        conf = {**(config.get("configurable") or {}), "thread_id": request.thread_id}
        config["configurable"] = conf
        config["metadata"] = {**(config.get("metadata") or {}), "run_id": request.id}
        given = body.get("input")
        try:
            run_input = given
            if request.attempts > 1 and await self._already_started(request, given):
                run_input = None  # a worker died mid-run: continue from its last checkpoint
            try:
                result = await self.graph.ainvoke(run_input, config)
            except ResumeError:
                if request.attempts <= 1:
                    raise
                result = await self.graph.ainvoke(None, config)
        except ThreadBusyError:
            await anyio.sleep(min(self.poll, 0.2))
            await self._store(
                lambda: self.queue_store.finish_request(request.id, self.owner, "queued")
            )
            return
        except Exception as exc:
            log.exception("run %s on thread %s failed", request.id, request.thread_id)
            await self._fail(request, f"{type(exc).__name__}: {exc}")
            return
        output = serde.dumps(result, channel="run result")
        await self._store(
            lambda: self.queue_store.finish_request(request.id, self.owner, "done", result=output)
        )

    def _decode(self, request: RunRequest) -> dict[str, Any] | str:
        """The request's payload, or why it cannot be run."""
        try:
            body = self.graph.serde.loads(request.payload)
        except Exception as exc:
            return f"its payload cannot be decoded ({type(exc).__name__}: {exc})"
        if not isinstance(body, dict) or not isinstance(body.get("config") or {}, dict):
            return f"its payload is not a run request (got {type(body).__name__})"
        graph = body.get("graph")
        if graph is not None and graph != self.graph.name:
            return (
                f"it was submitted for graph {graph!r}, but this worker serves "
                f"{self.graph.name!r} (one graph per queue)"
            )
        return body

    async def _fail(self, request: RunRequest, reason: str) -> None:
        """Mark a claimed request failed with `reason` (if this worker still holds it)."""
        log.error("run %s on thread %s failed: %s", request.id, request.thread_id, reason)
        await self._store(
            lambda: self.queue_store.finish_request(request.id, self.owner, "failed", error=reason)
        )

    async def _already_started(self, request: RunRequest, given: Any) -> bool:
        """Whether an earlier attempt already applied this request's input (its checkpoints
        carry the request id; a recovery may have continued the run since)."""
        if isinstance(given, Command):
            return False  # answers already recorded make the resume a ResumeError, handled above
        found = await self.saver.history(request.thread_id, filter={"run_id": request.id}, limit=1)
        return bool(found)

    async def run_duties(self) -> None:
        """Recover expired runs and fire passed deadlines (each at most a page at a time), and
        sweep the graph's store when its sweep interval has passed."""
        try:
            await self.recover()
            await self.fire_deadlines()
            self._outage.recovered()
        except StoreUnavailableError as exc:
            self._outage.failed(exc)  # one line per outage, not a traceback per round
        except Exception:
            log.exception("worker duties failed")
        if self.store_sweeper is not None:
            await self.store_sweeper.tick()

    async def recover(self) -> list[str]:
        """Continue the runs of this graph whose process died (their lease expired)."""
        return await self.graph.arecover()

    async def fire_deadlines(self) -> list[str]:
        """Answer (or cancel) interrupts of this graph whose deadline passed."""
        fired = []
        query = InboxQuery(graph=self.graph.name, due_before=time.time())
        for entry in await self.inbox_store.list_inbox(query):
            if entry.damaged is not None:
                log.error(
                    "thread %r: inbox entry %r is damaged: %s",
                    entry.thread_id,
                    entry.interrupt_id,
                    entry.damaged,
                )
                continue
            action = self.graph.serde.loads(entry.on_timeout) if entry.on_timeout else None
            config = {"configurable": {"thread_id": entry.thread_id}}
            try:
                if action is CANCEL:
                    await self.graph.acancel(config)
                else:
                    await self.graph.ainvoke(Command(resume={entry.interrupt_id: action}), config)
                fired.append(entry.interrupt_id)
            except (ThreadBusyError, ResumeError):
                continue  # someone answered it or is running the thread right now
        return fired
