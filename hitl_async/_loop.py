"""The superstep loop of one run: load the thread, apply the input or answers, then run steps —
every task of a step concurrently, their writes applied together in task order, a checkpoint
after each — until the graph ends, pauses or fails."""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from hitl_async import _lease_keeper
from hitl_async._checkpoint import (
    NULL_TASK,
    EngineCheckpoint,
    TaskSpec,
    new_checkpoint_id,
    now_iso,
    task_id,
    write_records,
)
from hitl_async._runtime import Scratchpad
from hitl_async._task import Task, execute, route
from hitl_async.checkpoint.base import Commit, InboxEntry, WriteRecord
from hitl_async.constants import (
    DONE,
    END,
    ERROR,
    INTERRUPT,
    NEXT,
    RESUME,
    START,
    TASK_RESULT,
    TASK_RESULT_IDX,
)
from hitl_async.errors import (
    AmbiguousResumeError,
    CheckpointConflictError,
    EmptyInputError,
    GraphRecursionError,
    InvalidConfigError,
    InvalidUpdateError,
    LeaseLostError,
    NoPendingInterruptError,
    ParentCommand,
    SerializationError,
    StoreUnavailableError,
    ThreadBusyError,
    UnknownInterruptError,
)
from hitl_async.runtime import Runtime
from hitl_async.types import (
    Command,
    Interrupt,
    PregelTask,
    Send,
    StateSnapshot,
)

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver, Lease, LoadedCheckpoint
    from hitl_async.graph.compiled import CompiledStateGraph

__all__ = ["Run", "is_interrupt_id", "prepare_tasks"]

_ID = re.compile(r"[0-9a-f]{32}")
_OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:"
_RUNS = itertools.count(1)
_UNSET: Any = object()
_BATCH = 64
_BATCH_SECONDS = 0.05
_RETRY_DELAYS = (0.05, 0.2, 0.5)
"""Pauses before each retry of a store write that failed with a transient
`StoreUnavailableError`; once they are spent, the error is raised."""

log = logging.getLogger("hitl_async.run")


def is_interrupt_id(key: Any) -> bool:
    """Whether `key` has the shape of an interrupt id (32 lowercase hex digits)."""
    return isinstance(key, str) and _ID.fullmatch(key) is not None


def _drop(_: Any) -> None:
    return None


def prepare_tasks(cp: EngineCheckpoint, checkpoint_ns: str) -> list[Task]:
    """The tasks of the step that runs from `cp`, with what each already wrote (done, paused on
    interrupts, answered, failed, kept `@task` results)."""
    specs = list(cp.tasks)
    for _, channel, value in cp.writes.get(NULL_TASK, ()):
        if channel != NEXT:
            continue
        if isinstance(value, Send):
            specs.append(TaskSpec(value.node, True, value.arg))
        elif all(s.push or s.node != value for s in specs):
            specs.append(TaskSpec(value))
    tasks = []
    for i, spec in enumerate(specs):
        t = Task(task_id(cp.checkpoint_id, checkpoint_ns, i, spec.node), i, spec)
        for _, channel, value in cp.writes.get(t.id, ()):
            if channel == DONE:
                t.done = t.persisted = True
            elif channel == INTERRUPT:
                t.raised = tuple(value)
            elif channel == RESUME:
                t.answers = dict(value)
            elif channel == ERROR:
                t.error_text = value
            elif channel == TASK_RESULT:
                t.results[value[0]] = value[1]
            else:
                t.writes.append((channel, value))
        if t.done and t.name != START:
            t.update = {c: v for c, v in t.writes if not c.startswith("__")} or None
        tasks.append(t)
    return tasks


class Run:
    """One run on one thread: the current checkpoint, its tasks, and the buffered stream events."""

    def __init__(
        self,
        graph: CompiledStateGraph,
        config: dict[str, Any],
        *,
        modes: Sequence[str] = ("updates",),
        durability: str = "async",
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        saver: BaseSaver | None = None,
    ) -> None:
        self.graph = graph
        self.plan = graph.plan
        self.saver = saver if saver is not None else graph.checkpointer
        self.serde = graph.serde
        self.config = config
        conf = config.get("configurable") or {}
        self.thread_id: str | None = conf.get("thread_id")
        self.ns: str = conf.get("checkpoint_ns", "")
        self.at: str | None = conf.get("checkpoint_id")
        self.modes = frozenset(modes)
        self.durability = durability
        self.limit = int(config.get("recursion_limit", 25))
        if self.limit < 1:
            raise InvalidConfigError(f"recursion_limit must be at least 1, got {self.limit}")
        self.before = interrupt_before
        self.after = interrupt_after
        self.events: list[tuple[str, Any]] = []
        self.cp = EngineCheckpoint.empty()
        self.head: str | None = None
        self.dirty: set[str] = set()
        self.unsaved = False
        self.skip_before = False
        self.tasks: list[Task] = []
        self.interrupts: tuple[Interrupt, ...] = ()
        self.steps_run = 0
        self.io_free = self.saver is None or self.saver.io_free
        self.user_metadata = dict(config.get("metadata") or {})
        self.parent: Run | None = None
        self.subgraphs = False
        self.ns_path: tuple[str, ...] = ()
        self.context: Any = None
        self._save_lock: anyio.Lock | None = None
        self.lease: Lease | None = None
        self.keeper: int | None = None
        self.outbox: list[Commit] = []
        self.last_tasks: Sequence[Task] = ()
        self.staged_at = 0.0
        self.coordinated = self.saver is not None and self.saver.supports_coordination
        self.owner = f"{_OWNER}{next(_RUNS)}"
        self.indexed: set[str] | None = None

    # -- small helpers ---------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self.cp.checkpoint_id is not None

    def _emit(self, mode: str, chunk: Any) -> None:
        if mode in self.modes:
            self.events.append((mode, chunk))

    def output(self) -> dict[str, Any]:
        """The state keys the graph outputs."""
        values = self.plan.state_values(self.cp.values)
        schema = self.graph.builder.output_schema
        if schema is self.graph.builder.schema:
            return values
        return {k: v for k, v in values.items() if k in schema.fields}

    def config_for(self, checkpoint_id: str | None) -> dict[str, Any]:
        return {
            "configurable": {
                "thread_id": self.thread_id,
                "checkpoint_ns": self.ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    def _metadata(self, source: str, step: int) -> dict[str, Any]:
        return {**self.user_metadata, "source": source, "step": step, "parents": {}}

    def _new_checkpoint(self, source: str, step: int, tasks: list[TaskSpec]) -> None:
        """Move to a new checkpoint whose values are the current ones (changed since in place)."""
        new_id = new_checkpoint_id(self.cp.checkpoint_id)
        # Under durability="exit" an unsaved checkpoint is skipped: the chain links saved ones.
        skip = self.unsaved and self.durability == "exit"
        parent = self.cp.parent_id if skip else self.cp.checkpoint_id
        self.cp = EngineCheckpoint(
            checkpoint_id=new_id,
            parent_id=parent,
            created_at=now_iso(),
            step=step,
            metadata=self._metadata(source, step),
            values=self.cp.values,
            versions=self.cp.versions,
            tasks=tasks,
        )
        for ch in self.dirty:
            if ch in self.cp.values:
                self.cp.versions[ch] = new_id
            else:
                self.cp.versions.pop(ch, None)
        self.unsaved = True

    def _prepare_tasks(self) -> None:
        """Tasks of the step that runs from the current checkpoint, with their pending writes."""
        self.tasks = prepare_tasks(self.cp, self.ns)

    def pending(self) -> list[tuple[Task, Interrupt]]:
        """Unanswered interrupts of unfinished tasks, in task order."""
        return [(t, i) for t in self.tasks for i in t.pending]

    # -- loading and input -----------------------------------------------------------------------

    def _need_thread(self) -> str:
        if self.thread_id is None:
            raise InvalidConfigError(
                "this graph has a checkpointer, so every run needs a thread id: pass "
                "config={'configurable': {'thread_id': '...'}}"
            )
        return self.thread_id

    async def load(self, prefetched: Any = _UNSET) -> None:
        """Load the thread's head (or the checkpoint named in the config)."""
        saver = self.saver
        if saver is None:
            return
        thread_id = self._need_thread()
        if prefetched is _UNSET:
            loaded = await saver.load(thread_id, self.ns, self.at)
        else:
            loaded = prefetched
        if loaded is None and self.at is not None:
            raise InvalidConfigError(
                f"thread {self.thread_id!r} has no checkpoint {self.at!r} (namespace "
                f"{self.ns!r}); use a config from get_state_history()"
            )
        if loaded is not None:
            self.set_loaded(loaded)
            if self.at is None or self.at == (head := await self._head_id()):
                self.head = self.cp.checkpoint_id
                self.indexed = {i.id for _, i in self.pending()}
            else:
                self.head = head
        else:
            self.indexed = set()
            self._prepare_tasks()

    def set_loaded(self, loaded: LoadedCheckpoint) -> None:
        """Make a stored checkpoint current, with the input's pending update folded in."""
        self.cp = EngineCheckpoint.decode(loaded, self.serde)
        null_items = [
            (c, v) for _, c, v in self.cp.writes.get(NULL_TASK, ()) if not c.startswith("__")
        ]
        if null_items:
            self.dirty |= self.plan.apply(
                self.cp.values, null_items, source="Command(update=...)", strict=False
            )
        self._prepare_tasks()

    async def _head_id(self) -> str | None:
        assert self.saver is not None and self.thread_id is not None
        current = await self.saver.load(self.thread_id, self.ns)
        return current.record.checkpoint_id if current is not None else None

    async def start(self, input: Any, *, wait: float = 0.0) -> None:
        """Claim the thread, load it and apply the run's input. Strict resume errors are raised
        before anything is written."""
        await self.load(await self.claim(wait))
        await self.apply(input)

    # -- one writer per thread -------------------------------------------------------------------

    async def claim(self, wait: float = 0.0) -> Any:
        """Take the thread's lease (waiting up to `wait` seconds for a busy thread) and load the
        checkpoint the run starts from in the same round trip; `_UNSET` without leases."""
        if not self.coordinated or self.parent is not None:
            return _UNSET
        assert self.saver is not None
        thread_id = self._need_thread()
        deadline = time.monotonic() + wait
        while True:
            try:
                self.lease, loaded = await self.saver.acquire_and_load(
                    thread_id,
                    self.owner,
                    self.graph.lease_ttl,
                    graph=self.graph.name,
                    checkpoint_ns=self.ns,
                    checkpoint_id=self.at,
                )
                if not self.io_free:
                    self.keeper = _lease_keeper.keep(self._renew_now, self.graph.lease_ttl / 3)
                return loaded
            except ThreadBusyError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                await self.saver.wait_for_change(self.thread_id, min(remaining, 1.0))

    async def renew(self) -> None:
        """Extend the lease when less than half of it is left."""
        lease = self.lease
        if lease is not None and lease.expires_at - time.time() < self.graph.lease_ttl / 2:
            assert self.saver is not None
            self.lease = await self.saver.renew_lease(lease, self.graph.lease_ttl)

    async def _renew_now(self) -> float:
        """Called by the lease keeper thread in this run's loop; returns when to call again."""
        lease = self.lease
        if lease is not None:
            assert self.saver is not None
            self.lease = await self.saver.renew_lease(lease, self.graph.lease_ttl)
        return self.graph.lease_ttl / 3

    def _stop_keeping(self) -> None:
        if self.keeper is not None:
            _lease_keeper.release(self.keeper)
            self.keeper = None

    async def release(self) -> None:
        """Give the thread back (the run ended, paused or failed). If the store cannot be
        reached the lease simply lapses after `lease_ttl`; the run's own error stands."""
        self._stop_keeping()
        lease, self.lease = self.lease, None
        if lease is not None and self.saver is not None:
            if self.io_free:  # an in-process store: the call cannot be interrupted half-way
                await self.saver.release_lease(lease)
                return
            with anyio.CancelScope(shield=True):
                try:
                    await self.saver.release_lease(lease)
                except StoreUnavailableError as exc:
                    log.warning("thread %r: could not release its lease: %s", self.thread_id, exc)

    async def apply(self, input: Any) -> None:
        """Apply the run's input to the loaded thread: new input, a Command, or None."""
        if isinstance(input, Command):
            await self._command(input)
            self.skip_before = True
        elif input is None:
            if not self.exists:
                raise EmptyInputError(
                    f"thread {self.thread_id!r} has no checkpoint to continue from: start it with "
                    "an input (a dict of state values)"
                )
            if self.saver is not None and self.head != self.cp.checkpoint_id:
                self._fork()
            self.skip_before = True
            if "values" in self.modes:
                self._emit("values", self.output())
        else:
            await self._input(input)

    def _fork(self) -> None:
        """Replaying a past checkpoint: continue from a copy of it (metadata source "fork", its
        child), as LangGraph does, so the run neither reuses that checkpoint's pending writes (a
        human's earlier answers) nor writes beside them; the copy becomes the thread's head."""
        specs = [t.spec for t in self.tasks]
        self.cp.writes = {}
        self._new_checkpoint("fork", self.cp.step + 1, specs)
        self._prepare_tasks()
        self._emit_checkpoint()

    async def _input(self, value: Any) -> None:
        """New input: an input checkpoint whose only task applies it (pending tasks are dropped)."""
        step = self.cp.step + 1 if self.exists else -1
        self.cp.writes = {}
        self._new_checkpoint("input", step, [TaskSpec(START, True, value)])
        self._prepare_tasks()
        self._emit_checkpoint()
        if self.durability == "sync":
            await self._save()
        elif self.durability == "async":
            self._stage()

    async def _command(self, cmd: Command[Any]) -> None:
        if cmd.graph == Command.PARENT:
            raise InvalidUpdateError("Command(graph=Command.PARENT) cannot be a run's input")
        thread = str(self.thread_id)
        answered: list[Task] = []
        if cmd.resume is not None:
            if self.saver is None:
                raise NoPendingInterruptError(thread, exists=False)
            if not self.exists:
                raise NoPendingInterruptError(thread, exists=False)
            pending = self.pending()
            if not pending:
                raise NoPendingInterruptError(
                    thread, exists=True, next_nodes=[t.name for t in self.tasks if not t.done]
                )
            by_id = {intr.id: t for t, intr in pending}
            resume = cmd.resume
            if isinstance(resume, dict) and resume and all(is_interrupt_id(k) for k in resume):
                unknown = [k for k in resume if k not in by_id]
                if unknown:
                    raise UnknownInterruptError(thread, unknown, [i for _, i in pending])
                answers = dict(resume)
            else:
                if len(pending) > 1:
                    raise AmbiguousResumeError(thread, [i for _, i in pending])
                answers = {pending[0][1].id: resume}
            for iid, value in answers.items():
                by_id[iid].answers[iid] = value
                if by_id[iid] not in answered:
                    answered.append(by_id[iid])
        targets = cmd.goto_targets()
        for target in targets:
            node = target.node if isinstance(target, Send) else target
            if node != END and node not in self.graph.builder.nodes:
                raise InvalidUpdateError(
                    f"thread {thread!r}: Command(goto={node!r}) names an unknown node; nodes are "
                    f"{sorted(self.graph.builder.nodes)}"
                )
        items = self.graph.builder.schema.items(cmd.update, source="Command(update=...)")
        has_pending = any(not t.done for t in self.tasks)
        if not has_pending and (items or targets or not self.exists):
            # A finished or new thread: the command is this run's input.
            await self._input(cmd)
            return
        null_writes = items + [(NEXT, t) for t in targets if t != END]
        records = []
        # The answers themselves are stored with the outcome of their task (done, paused again),
        # never before: a step that fails leaves the thread exactly as it was, still asking.
        if null_writes:
            rows = self.cp.writes.setdefault(NULL_TASK, [])
            rows.extend((len(rows) + i, c, v) for i, (c, v) in enumerate(null_writes))
            records += write_records(NULL_TASK, [(c, v) for _, c, v in rows], self.serde)
            self.dirty |= self.plan.apply(self.cp.values, items, source="Command(update=...)")
            answers = {t.id: t.answers for t in self.tasks}
            self._prepare_tasks()
            for t in self.tasks:
                t.answers = answers.get(t.id, t.answers)
        if records and self.saver is not None:
            if self.unsaved:
                await self._save()
            await self._put(records)
        if "values" in self.modes:
            self._emit("values", self.output())

    # -- saving ----------------------------------------------------------------------------------

    def _stage(self, writes: Sequence[WriteRecord] = ()) -> None:
        """Queue the current checkpoint for the store (serialized now, written by `_flush`)."""
        if self.saver is None or not self.unsaved:
            return
        assert self.thread_id is not None
        cp = self.cp
        try:
            blobs = cp.blobs(self.dirty, self.serde)
        except SerializationError as exc:
            raise self._unstorable(exc) from exc
        if not self.outbox:
            self.staged_at = time.monotonic()
        self.outbox.append(
            Commit(
                cp.record(self.thread_id, self.ns, self.serde),
                blobs,
                self.head,
                writes,
                self._inbox() if self.coordinated else None,
            )
        )
        self.head = cp.checkpoint_id
        self.dirty = set()
        self.unsaved = False

    def _unstorable(self, exc: SerializationError) -> SerializationError:
        """Name the node whose write cannot be serialized (nothing of the step is stored)."""
        for channel in sorted(self.dirty):
            if channel not in self.cp.values:
                continue
            try:
                self.serde.dumps(self.cp.values[channel], channel=channel)
            except SerializationError:
                writers = [t.name for t in self.last_tasks for c, _ in t.writes if c == channel]
                node = writers[-1] if writers else None
                by = f"node {node!r} wrote" if node else "the input set"
                return SerializationError(
                    f"thread {self.thread_id!r}: {by} state key {channel!r} a value that cannot "
                    f"be stored, so the step was not saved and the thread is unchanged: {exc}"
                )
        return exc

    async def _flush(self, *, release: bool = False) -> None:
        """Write the queued checkpoints: one `commit`, or a chain in one `commit_many` (which
        also releases the lease when `release`: the run ends).

        A transient `StoreUnavailableError` (a dropped connection, a lock held too long) is
        retried after the pauses of `_RETRY_DELAYS`. The store may have applied an attempt
        whose reply was lost, so a retry can conflict with its own earlier attempt: on a
        conflict the head is read back, and if it is one of the queued checkpoints, those up to
        it are stored and only the rest is written (ids are unique, so only this run can have
        written them)."""
        if not self.outbox:
            if release:
                await self.release()
            return
        assert self.saver is not None
        items, self.outbox = self.outbox, []
        lease = self.lease
        if release:
            self.lease = None
            self._stop_keeping()
        failures = 0
        while items:
            try:
                try:
                    if len(items) > 1 or release:
                        await self.saver.commit_many(items, lease=lease, release=release)
                    elif self.coordinated:
                        c = items[0]
                        await self.saver.commit(
                            c.record,
                            c.blobs,
                            expected_head=c.expected_head,
                            writes=c.writes,
                            lease=lease,
                            inbox=c.inbox,
                        )
                    else:
                        c = items[0]
                        await self.saver.commit(
                            c.record, c.blobs, expected_head=c.expected_head, writes=c.writes
                        )
                    return
                except (CheckpointConflictError, LeaseLostError) as exc:
                    if isinstance(exc, LeaseLostError) and not (failures and release):
                        raise  # lost to another run (not to our own earlier release)
                    first = items[0].record
                    head = await self.saver.load(first.thread_id, first.checkpoint_ns)
                    ids = [c.record.checkpoint_id for c in items]
                    if head is None or head.record.checkpoint_id not in ids:
                        raise  # another writer's head: a real conflict
                    stored = ids.index(head.record.checkpoint_id) + 1
                    log.info(
                        "thread %r: %d of %d checkpoints were already stored (a reply was lost)",
                        self.thread_id,
                        stored,
                        len(items),
                    )
                    items = items[stored:]
            except StoreUnavailableError as exc:
                failures += 1
                await self._wait_to_retry(exc, failures, "commit")

    async def _wait_to_retry(self, exc: StoreUnavailableError, failures: int, what: str) -> None:
        """Pause before retrying a store write that failed `failures` times in a row; raise
        `exc` when it will not pass by itself (read-only, full) or the retries are spent."""
        if not exc.transient:
            raise exc
        if failures > len(_RETRY_DELAYS):
            raise exc.retried(failures) from exc
        delay = _RETRY_DELAYS[failures - 1]
        log.warning(
            "thread %r: %s failed (%s); retry %d of %d in %.2f s",
            self.thread_id,
            what,
            exc.cause,
            failures,
            len(_RETRY_DELAYS),
            delay,
        )
        await anyio.sleep(delay)

    async def _save(self, writes: Sequence[WriteRecord] = ()) -> None:
        """Write the current checkpoint (and any queued before it) now."""
        self._stage(writes)
        await self._flush()

    async def _save_soon(self) -> None:
        """durability="async": queue the checkpoint; write the queue in one round trip when it
        is long or its oldest checkpoint is old (and always before the run pauses, fails or
        ends). Time spent waiting for the thread's lease does not count."""
        self._stage()
        if len(self.outbox) >= _BATCH or time.monotonic() - self.staged_at >= _BATCH_SECONDS:
            await self._flush()

    async def _put(self, records: Sequence[WriteRecord]) -> None:
        """Store pending writes against the current (stored) checkpoint, under the lease.

        A transient `StoreUnavailableError` is retried as in `_flush`; writing the same writes
        again is harmless (they are upserted by task id and index)."""
        assert self.saver is not None and self.thread_id is not None
        assert self.cp.checkpoint_id is not None
        await self._flush()
        inbox = self._inbox() if self.coordinated else None  # once: it updates the index state
        failures = 0
        while True:
            try:
                if self.coordinated:
                    await self.saver.put_writes(
                        self.thread_id,
                        self.ns,
                        self.cp.checkpoint_id,
                        records,
                        lease=self.lease,
                        inbox=inbox,
                    )
                else:
                    await self.saver.put_writes(
                        self.thread_id, self.ns, self.cp.checkpoint_id, records
                    )
                return
            except StoreUnavailableError as exc:
                failures += 1
                await self._wait_to_retry(exc, failures, "pending write")

    def _inbox(self) -> list[InboxEntry] | None:
        """The thread's inbox entries when they differ from what the index holds, else None.

        Only the root run of a thread keeps the index: its pending interrupts include those of
        its subgraphs.
        """
        if self.parent is not None:
            return None
        pending = self.pending()
        ids = {i.id for _, i in pending}
        if ids == self.indexed:
            return None
        self.indexed = ids
        return [
            InboxEntry(
                thread_id=str(self.thread_id),
                interrupt_id=i.id,
                checkpoint_ns=self.ns,
                node=t.name,
                value=self.serde.dumps(i.value, channel=f"interrupt of {t.name!r}"),
                created_at=i.created_at or now_iso(),
                deadline=i.deadline,
                on_timeout=(
                    None
                    if i.deadline is None
                    else self.serde.dumps(i.on_timeout, channel=f"on_timeout of {t.name!r}")
                ),
                graph=self.graph.name,
            )
            for t, i in pending
        ]

    def _records(self, tasks: Sequence[Task]) -> list[Any]:
        out: list[Any] = []
        for t in tasks:
            rows: list[tuple[str, Any]] = []
            if t.done:
                rows = [*t.writes, (DONE, None)]
            if t.raised is not None:
                rows.append((INTERRUPT, list(t.raised)))
            if t.answers:
                rows.append((RESUME, list(t.answers.items())))
            if t.error is not None:
                rows.append((ERROR, repr(t.error)))
            if rows:
                out += write_records(t.id, rows, self.serde, t.name)
        return out

    async def _persist(self, tasks: Sequence[Task], *, defer: bool = False) -> None:
        """Store the outcome of tasks of a step that did not complete (paused or failed).

        With `defer` (the run is about to pause), a checkpoint not yet in the store is only
        queued: `finish()` writes it together with the lease's release, in one round trip.
        """
        todo = [
            t
            for t in tasks
            if not t.persisted and (t.done or t.raised is not None or t.error is not None)
        ]
        if self.saver is None:
            return
        if self.unsaved:
            self._stage(self._records(todo))
            if not defer:
                await self._flush()
        elif todo and defer and self._queued_current():
            self._add_to_queued(self._records(todo))
        elif todo:
            await self._put(self._records(todo))
        for t in todo:
            t.persisted = True

    def _queued_current(self) -> bool:
        """The current checkpoint is queued for the store but not written yet."""
        return bool(self.outbox) and (self.outbox[-1].record.checkpoint_id == self.cp.checkpoint_id)

    def _add_to_queued(self, records: Sequence[WriteRecord]) -> None:
        """Store `records` with the queued current checkpoint (one round trip at the pause, not
        a commit and then a pending write), and the inbox as it is now."""
        last = self.outbox[-1]
        inbox = self._inbox() if self.coordinated else None
        self.outbox[-1] = Commit(
            last.record,
            last.blobs,
            last.expected_head,
            [*last.writes, *records],
            last.inbox if inbox is None else inbox,
        )

    async def finish(self, *, release: bool = False) -> None:
        """Write what is still only in memory or queued (the run ended or paused); with
        `release`, give the thread back in the same round trip."""
        self._stage()
        await self._flush(release=release and self.lease is not None)
        if release:
            await self.release()

    @property
    def pending_save(self) -> bool:
        """Something is not in the store yet."""
        return self.unsaved or bool(self.outbox)

    # -- one superstep ---------------------------------------------------------------------------

    def _hit(self, names: Sequence[str] | str | None, tasks: Sequence[Task]) -> bool:
        if not names:
            return False
        return any(t.name != START and (names == "*" or t.name in names) for t in tasks)

    async def tick(self) -> bool:
        """Run one superstep; False when the run ended (finished or paused)."""
        tasks = self.tasks
        if not tasks:
            return False
        step = self.cp.step + 1
        counts = len(tasks) > 1 or tasks[0].name != START
        if counts and self.steps_run >= self.limit:
            raise GraphRecursionError(
                f"thread {self.thread_id!r}: recursion limit of {self.limit} supersteps reached "
                "without reaching END. If the loop is intended, raise it with "
                "config={'recursion_limit': N}; otherwise check the graph's conditional edges."
            )
        if (
            self.before
            and not self.skip_before
            and self._hit(self.before, [t for t in tasks if not t.done])
        ):
            await self._save()
            self.interrupts = ()
            self._emit("updates", {INTERRUPT: ()})
            return False
        self.skip_before = False
        if counts:
            self.steps_run += 1
        runnable = [t for t in tasks if not t.done and not t.waiting]
        view_cache: list[Any] = []
        values = self.cp.values

        def view() -> Any:
            if not view_cache:
                state = self.plan.state_values(values)  # a fresh dict of the state keys only
                schema = self.graph.builder.schema
                view_cache.append(state if schema.kind == "typeddict" else schema.view(state))
            return view_cache[0]

        if self.unsaved and self.durability != "exit":
            if self.durability == "async":
                await self._save_soon()
            else:
                await self._save()
        task_events = "tasks" in self.modes or "debug" in self.modes
        if task_events:
            for t in runnable:
                if t.name != START:  # the input task is not reported, as in LangGraph
                    self._emit_task_start(t, step)
        if self.lease is not None and self.keeper is None:
            await self.renew()  # in-process stores renew between steps
        if len(runnable) == 1:
            await self._execute(runnable[0], view, persist=False)
        elif runnable:
            persist_each = self.saver is not None and self.durability != "exit"
            async with anyio.create_task_group() as tg:
                for t in runnable:
                    tg.start_soon(self._execute, t, view, persist_each)
        for t in runnable:
            if t.finished_now and t.name != START:
                self._emit("updates", {t.name: t.update})
            if task_events and t.name != START:
                self._emit_task_result(t, step)
        failed: Task | None = None
        incomplete = False
        for t in tasks:
            if not t.done:
                incomplete = True
                if t.error is not None:
                    failed = t
                    break
        if failed is not None and isinstance(failed.error, ParentCommand):
            raise failed.error
        if incomplete:
            await self._persist(tasks, defer=failed is None)
            if failed is not None:
                assert failed.error is not None
                raise failed.error
            self.interrupts = tuple(i for _, i in self.pending())
            self._emit("updates", {INTERRUPT: self.interrupts})
            if "values" in self.modes:
                self._emit("values", {**self.output(), INTERRUPT: self.interrupts})
            return False
        await self._complete(tasks, step)
        if self.after and self._hit(self.after, tasks):
            await self._save()
            self.interrupts = ()
            self._emit("updates", {INTERRUPT: ()})
            return False
        return bool(self.tasks)

    def runtime_for(self, writer: Any) -> Runtime[Any]:
        return Runtime(
            context=self.context,
            store=self.graph.store,
            stream_writer=writer,
            thread_id=self.thread_id,
        )

    async def _execute(self, t: Task, view: Any, persist: bool) -> None:
        pad_writer = self._custom if "custom" in self.modes else _drop
        pad = Scratchpad(
            task_id=t.id,
            node=t.name,
            config=self.config,
            resume=t.resume,
            answers=t.answers,
            run=self,
            in_subgraph=self.parent is not None,
            durable=self.saver is not None,
            writer=pad_writer,
            results=t.results,
            save_result=partial(self._save_result, t),
            raised_before={i.id: i for i in t.raised or ()},
        )
        t.error = None
        t.raised = None
        await execute(self.graph, t, self.cp.values, view, pad, is_new=self.cp.parent_id is None)
        if persist and (t.done or t.raised is not None) and not t.persisted:
            await self._persist([t])

    async def _save_result(self, t: Task, index: int, value: Any) -> None:
        """Keep a `@task` call's result with the checkpoint as soon as it finishes."""
        t.results[index] = value
        if self.saver is None:
            return
        assert self.thread_id is not None
        if self._save_lock is None:
            self._save_lock = anyio.Lock()
        async with self._save_lock:
            await self._save()
        record = WriteRecord(
            t.id,
            TASK_RESULT_IDX + index,
            TASK_RESULT,
            self.serde.dumps((index, value), channel=f"{t.name} task result"),
            t.name,
        )
        await self._put([record])

    def _custom(self, chunk: Any) -> None:
        self.events.append(("custom", chunk))

    async def _complete(self, tasks: Sequence[Task], step: int) -> None:
        values = dict(self.cp.values)
        writes = [(t.name, t.writes) for t in tasks]
        self.last_tasks = tasks
        try:
            changed, next_tasks = self.plan.step(values, writes)
        except InvalidUpdateError as exc:
            await self._persist(tasks)
            raise InvalidUpdateError(f"thread {self.thread_id!r}, step {step}: {exc}") from exc
        self.cp.values = values
        self.cp.versions = dict(self.cp.versions)
        self.dirty |= changed
        self._new_checkpoint("loop", step, next_tasks)
        if self.durability == "sync":
            await self._save()
        self._prepare_tasks()
        if "values" in self.modes:
            self._emit("values", self.output())
        self._emit_checkpoint()

    # -- update_state ----------------------------------------------------------------------------

    async def update(self, values: Any, as_node: str | None) -> dict[str, Any]:
        """Write `values` as if node `as_node` returned them, as a new checkpoint."""
        await self.load()
        builder = self.graph.builder
        if as_node is not None and as_node not in builder.nodes and as_node != START:
            raise InvalidUpdateError(
                f"thread {self.thread_id!r}: update_state(as_node={as_node!r}) names an unknown "
                f"node; nodes are {sorted(builder.nodes)}"
            )
        if as_node is None and not self.exists:
            as_node = START
        at_head = self.head == self.cp.checkpoint_id  # False: forking a past checkpoint
        items = builder.schema.items(values, source="update_state")
        old_tasks = self.tasks
        new_values = dict(self.cp.values)
        if as_node is None:
            changed = self.plan.apply(new_values, items, source="update_state")
            next_specs = [t.spec for t in old_tasks]
        else:
            targets = await route(self.graph, as_node, items, new_values, (), self.config)
            finished = [(t.name, t.writes) for t in old_tasks if t.done]
            changed, routed = self.plan.step(new_values, [*finished, (as_node, items + targets)])
            # As in LangGraph, the update completes the paused step: only as_node's routes run next.
            next_specs = routed
        self.cp.values = new_values
        self.cp.versions = dict(self.cp.versions)
        self.cp.writes = {}
        self.dirty |= changed
        step = self.cp.step + 1 if self.exists else 0
        self._new_checkpoint("update", step, next_specs)
        self._prepare_tasks()
        records: list[Any] = []
        if as_node is None and at_head:
            # Paused tasks stay paused: their interrupts (same ids) and finished siblings' writes
            # move to the new checkpoint, so the thread can still be resumed as before.
            for new, old in zip(self.tasks, old_tasks, strict=False):
                rows: list[tuple[str, Any]] = []
                if old.done:
                    rows = [*old.writes, (DONE, None)]
                if old.raised is not None:
                    rows.append((INTERRUPT, list(old.raised)))
                if old.answers:
                    rows.append((RESUME, list(old.answers.items())))
                if rows:
                    records += write_records(new.id, rows, self.serde, new.name)
                for index, value in old.results.items():  # kept @task results stay kept
                    new.results[index] = value
                    blob = self.serde.dumps((index, value), channel=f"{new.name} task result")
                    records.append(
                        WriteRecord(new.id, TASK_RESULT_IDX + index, TASK_RESULT, blob, new.name)
                    )
        await self._save(records)
        return self.config_for(self.cp.checkpoint_id)

    async def cancel(self) -> dict[str, Any]:
        """End the thread where it is: a checkpoint (source "cancel") with no next tasks."""
        await self.load()
        if not self.exists:
            raise InvalidConfigError(f"thread {self.thread_id!r} does not exist; nothing to cancel")
        self.cp.writes = {}
        self._new_checkpoint("cancel", self.cp.step + 1, [])
        self._prepare_tasks()
        await self._save()
        return self.config_for(self.cp.checkpoint_id)

    # -- state snapshots -------------------------------------------------------------------------

    def snapshot(self, *, at_head: bool = True) -> StateSnapshot:
        """The current checkpoint as `get_state()` reports it.

        At the head, writes of tasks that finished in an unfinished step show in `values` and
        those tasks leave `next`; an older checkpoint shows its step as it began.
        """
        if not self.exists:
            return StateSnapshot({}, (), self.config, None, None, None, (), ())
        values = dict(self.cp.values)
        if at_head:
            self.plan.apply(
                values,
                [(c, v) for t in self.tasks if t.done for c, v in t.writes if c[:2] != "__"],
                source="pending writes",
                strict=False,
            )
        tasks = tuple(
            PregelTask(
                id=t.id,
                name=t.name,
                path=t.path,
                error=t.error_text,
                interrupts=t.pending,
                state=None,
                result=t.update if t.done else None,
            )
            for t in self.tasks
        )
        cp = self.cp
        return StateSnapshot(
            values=self.plan.state_values(values),
            next=tuple(t.name for t in self.tasks if not (t.done and at_head)),
            config=self.config_for(cp.checkpoint_id),
            metadata=dict(cp.metadata),
            created_at=cp.created_at,
            parent_config=self.config_for(cp.parent_id) if cp.parent_id else None,
            tasks=tasks,
            interrupts=tuple(i for _, i in self.pending()),
        )

    # -- debug / checkpoints / tasks streams -----------------------------------------------------

    def _emit_checkpoint(self) -> None:
        if "checkpoints" not in self.modes and "debug" not in self.modes:
            return
        cp = self.cp
        payload = {
            "config": self.config_for(cp.checkpoint_id),
            "parent_config": self.config_for(cp.parent_id) if cp.parent_id else None,
            "values": self.output(),
            "metadata": dict(cp.metadata),
            "next": [t.name for t in self.tasks if not t.done],
            "tasks": [
                {"id": t.id, "name": t.name, "interrupts": (), "state": None}
                for t in self.tasks
                if not t.done
            ],
        }
        self._emit("checkpoints", payload)
        self._emit_debug("checkpoint", cp.step, payload)

    def _emit_debug(self, kind: str, step: int, payload: dict[str, Any]) -> None:
        if "debug" in self.modes:
            self.events.append(
                (
                    "debug",
                    {
                        "step": step,
                        "timestamp": datetime.now(UTC).isoformat(),
                        "type": kind,
                        "payload": payload,
                    },
                )
            )

    def _emit_task_start(self, t: Task, step: int) -> None:
        payload = {
            "id": t.id,
            "name": t.name,
            "input": t.spec.arg if t.spec.push else self.output(),
            "triggers": (f"branch:to:{t.name}",) if not t.spec.push else ("__pregel_push",),
        }
        self._emit("tasks", payload)
        self._emit_debug("task", step, payload)

    def _emit_task_result(self, t: Task, step: int) -> None:
        payload = {
            "id": t.id,
            "name": t.name,
            "error": repr(t.error) if t.error is not None else None,
            "result": t.update if t.done else {},
            "interrupts": [{"value": i.value, "id": i.id} for i in t.pending],
        }
        self._emit("tasks", payload)
        self._emit_debug("task_result", step, payload)
