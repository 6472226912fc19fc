"""The way from a run to its store: checkpoints are serialized when the step ends and queued,
then written in batches (durability "async"), at once ("sync") or at the end ("exit"); pending
writes of tasks of an unfinished step and kept `@task` results go with them, and so does the
thread's inbox index. Transient store failures are retried."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from hitl_async._checkpoint import now_iso, write_records
from hitl_async._error_handlers import routed_rows
from hitl_async._task import interrupt_row
from hitl_async.checkpoint.base import Commit, InboxEntry, WriteRecord
from hitl_async.constants import DONE, ERROR, INTERRUPT, RESUME, TASK_RESULT, TASK_RESULT_IDX
from hitl_async.errors import (
    CheckpointConflictError,
    GraphBubbleUp,
    LeaseLostError,
    SerializationError,
    StoreUnavailableError,
)
from hitl_async.telemetry import get_logger, store_outage

if TYPE_CHECKING:
    from hitl_async._run import Run
    from hitl_async._task import Task
    from hitl_async.checkpoint.base import BaseSaver, Lease
    from hitl_async.serde import Serializer

__all__ = [
    "BATCH",
    "BATCH_SECONDS",
    "RETRY_DELAYS",
    "Outbox",
    "inbox_entries",
    "outcome_records",
]

BATCH = 64
"""durability="async": a queue this long is written at once."""
BATCH_SECONDS = 0.05
"""durability="async": a queue whose oldest checkpoint is this old (seconds) is written."""
RETRY_DELAYS = (0.05, 0.2, 0.5)
"""Pauses before each retry of a store write that failed with a transient
`StoreUnavailableError`; once they are spent, the error is raised."""

log = get_logger("hitl_async.run")


class Outbox:
    """What a run has not written to its store yet, and the writing of it."""

    __slots__ = ("_save_lock", "queue", "run", "staged_at")

    def __init__(self, run: Run) -> None:
        self.run = run
        self.queue: list[Commit] = []
        self.staged_at = 0.0
        self._save_lock: anyio.Lock | None = None

    @property
    def pending(self) -> bool:
        """Something is not in the store yet."""
        return self.run.unsaved or bool(self.queue)

    def _saver(self) -> BaseSaver:
        saver = self.run.saver
        assert saver is not None
        return saver

    # -- checkpoints -----------------------------------------------------------------------------

    def stage(self, writes: Sequence[WriteRecord] = ()) -> None:
        """Queue the current checkpoint for the store (serialized now, written by `flush`)."""
        run = self.run
        if run.saver is None or not run.unsaved:
            return
        thread_id = run.need_thread()
        cp = run.cp
        try:
            blobs = cp.blobs(run.dirty, run.serde)
        except SerializationError as exc:
            raise _unstorable(run, exc) from exc
        if not self.queue:
            self.staged_at = time.monotonic()
        self.queue.append(
            Commit(
                cp.record(thread_id, run.ns, run.serde, run.plan.untracked),
                blobs,
                run.head,
                writes,
                inbox_entries(run) if run.inboxed else None,
            )
        )
        run.head = cp.checkpoint_id
        run.dirty = set()
        run.unsaved = False

    async def flush(self, *, release: bool = False) -> None:
        """Write the queued checkpoints: one `commit`, or a chain in one `commit_many` (which
        also releases the lease when `release`: the run ends).

        A transient `StoreUnavailableError` (a dropped connection, a lock held too long) is
        retried after the pauses of `RETRY_DELAYS`. The store may have applied an attempt
        whose reply was lost, so a retry can conflict with its own earlier attempt: on a
        conflict the head is read back, and if it is one of the queued checkpoints, those up to
        it are stored and only the rest is written (ids are unique, so only this run can have
        written them)."""
        run = self.run
        if not self.queue:
            if release:
                await run.release()
            return
        items, self.queue = self.queue, []
        lease = run.lease.hand_over() if release else run.lease.current
        try:
            await self._write(items, lease, release)
        except BaseException:
            if release and lease is not None:
                # The releasing commit failed for good: release on its own, so the thread is
                # not held for lease_ttl (a store still down keeps it for the saver's next try).
                with contextlib.suppress(Exception):  # the commit's own error stands
                    await run.lease.give_back(lease, run.thread_id)
            raise

    async def _write(self, items: list[Commit], lease: Lease | None, release: bool) -> None:
        """`flush`'s writing of `items`, retried and reconciled as described there."""
        run = self.run
        saver = self._saver()
        failures = 0
        while items:
            try:
                try:
                    if len(items) > 1 or release:
                        await saver.commit_many(items, lease=lease, release=release)
                    else:
                        c = items[0]
                        await saver.commit(
                            c.record,
                            c.blobs,
                            expected_head=c.expected_head,
                            writes=c.writes,
                            lease=lease,
                            inbox=c.inbox,
                        )
                    if failures:
                        store_outage(saver, log).recovered()
                    return
                except (CheckpointConflictError, LeaseLostError) as exc:
                    if isinstance(exc, LeaseLostError) and not (failures and release):
                        raise  # lost to another run (not to our own earlier release)
                    first = items[0].record
                    head = await saver.load(first.thread_id, first.checkpoint_ns)
                    ids = [c.record.checkpoint_id for c in items]
                    if head is None or head.record.checkpoint_id not in ids:
                        raise  # another writer's head: a real conflict
                    stored = ids.index(head.record.checkpoint_id) + 1
                    log.info(
                        "thread %r: %d of %d checkpoints were already stored (a reply was lost)",
                        run.thread_id,
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
        if failures > len(RETRY_DELAYS):
            raise exc.retried(failures) from exc
        delay = RETRY_DELAYS[failures - 1]
        store_outage(self._saver(), log).failed(exc)
        log.info(  # one warning per outage (above); the retries themselves are details
            "thread %r: %s failed (%s); retry %d of %d in %.2f s",
            self.run.thread_id,
            what,
            exc.cause,
            failures,
            len(RETRY_DELAYS),
            delay,
        )
        await anyio.sleep(delay)

    async def save(self, writes: Sequence[WriteRecord] = ()) -> None:
        """Write the current checkpoint (and any queued before it) now."""
        self.stage(writes)
        await self.flush()

    async def save_soon(self) -> None:
        """durability="async": queue the checkpoint; write the queue in one round trip when it
        is long or its oldest checkpoint is old (and always before the run pauses, fails or
        ends). Time spent waiting for the thread's lease does not count."""
        self.stage()
        if len(self.queue) >= BATCH or time.monotonic() - self.staged_at >= BATCH_SECONDS:
            await self.flush()

    async def finish(self, *, release: bool = False) -> None:
        """Write what is still only in memory or queued (the run ended or paused); with
        `release`, give the thread back in the same round trip."""
        self.stage()
        await self.flush(release=release and self.run.lease.current is not None)

    # -- pending writes --------------------------------------------------------------------------

    async def put(self, records: Sequence[WriteRecord]) -> None:
        """Store pending writes against the current (stored) checkpoint, under the lease.

        A transient `StoreUnavailableError` is retried as in `flush`; writing the same writes
        again is harmless (they are upserted by task id and index)."""
        run = self.run
        saver = self._saver()
        thread_id = run.need_thread()
        checkpoint_id = run.cp.checkpoint_id
        assert checkpoint_id is not None
        await self.flush()
        inbox = inbox_entries(run) if run.inboxed else None  # once: it updates the index state
        failures = 0
        while True:
            try:
                await saver.put_writes(
                    thread_id,
                    run.ns,
                    checkpoint_id,
                    records,
                    lease=run.lease.current,
                    inbox=inbox,
                )
                if failures:
                    store_outage(saver, log).recovered()
                return
            except StoreUnavailableError as exc:
                failures += 1
                await self._wait_to_retry(exc, failures, "pending write")

    async def persist(self, tasks: Sequence[Task], *, defer: bool = False) -> None:
        """Store the outcome of tasks of a step that did not complete (paused or failed).

        With `defer` (the run is about to pause), a checkpoint not yet in the store is only
        queued: `finish()` writes it together with the lease's release, in one round trip.
        """
        run = self.run
        todo = [
            t
            for t in tasks
            if not t.persisted and (t.done or t.raised is not None or t.error is not None)
        ]
        if run.saver is None:
            return
        records = outcome_records(todo, run.serde, run.plan.untracked)
        if run.trace is not None:
            records += run.trace.pause_rows(run, todo)
        if run.unsaved:
            self.stage(records)
            if not defer:
                await self.flush()
        elif todo and defer and self._queued_current():
            self._add_to_queued(records)
        elif todo:
            await self.put(records)
        for t in todo:
            t.persisted = True

    async def save_result(
        self, t: Task, index: int, value: Any, writes: list[tuple[str, Any]]
    ) -> None:
        """Keep a `@task` call's result, and what it wrote to the state, with the checkpoint as
        soon as it finishes."""
        t.results[index] = value
        if writes:
            t.call_writes[index] = writes
        run = self.run
        if run.saver is None:
            return
        if self._save_lock is None:
            self._save_lock = anyio.Lock()
        async with self._save_lock:
            await self.save()
        record = WriteRecord(
            t.id,
            TASK_RESULT_IDX + index,
            TASK_RESULT,
            run.serde.dumps(
                (index, value, writes) if writes else (index, value),
                channel=f"{t.name} task result",
            ),
            t.name,
        )
        await self.put([record])

    def _queued_current(self) -> bool:
        """The current checkpoint is queued for the store but not written yet."""
        return bool(self.queue) and (
            self.queue[-1].record.checkpoint_id == self.run.cp.checkpoint_id
        )

    def _add_to_queued(self, records: Sequence[WriteRecord]) -> None:
        """Store `records` with the queued current checkpoint (one round trip at the pause, not
        a commit and then a pending write), and the inbox as it is now."""
        last = self.queue[-1]
        inbox = inbox_entries(self.run) if self.run.inboxed else None
        self.queue[-1] = Commit(
            last.record,
            last.blobs,
            last.expected_head,
            [*last.writes, *records],
            last.inbox if inbox is None else inbox,
        )


def _unstorable(run: Run, exc: SerializationError) -> SerializationError:
    """Name the node whose write cannot be serialized (nothing of the step is stored)."""
    for channel in sorted(run.dirty):
        if channel not in run.cp.values:
            continue
        try:
            run.serde.dumps(run.cp.values[channel], channel=channel)
        except SerializationError:
            writers = [t.name for t in run.last_tasks for c, _ in t.writes if c == channel]
            node = writers[-1] if writers else None
            by = f"node {node!r} wrote" if node else "the input set"
            return SerializationError(
                f"thread {run.thread_id!r}: {by} state key {channel!r} a value that cannot "
                f"be stored, so the step was not saved and the thread is unchanged: {exc}"
            )
    return exc


def outcome_records(
    tasks: Sequence[Task], serde: Serializer, untracked: frozenset[str] = frozenset()
) -> list[WriteRecord]:
    """The pending writes that record what tasks of an unfinished step did: their writes and
    that they are done, the interrupts they raised and the answers given, their error."""
    out: list[WriteRecord] = []
    for t in tasks:
        rows: list[tuple[str, Any]] = []
        if t.done:
            rows = [*t.writes, (DONE, None)]
        if t.raised is not None:
            rows.append((INTERRUPT, interrupt_row(t)))
        if t.answers:
            rows.append((RESUME, list(t.answers.items())))
        if t.error is not None and not isinstance(t.error, GraphBubbleUp):
            # (a signal such as a ParentCommand is no error of the task, as in LangGraph);
            # its node's error handler failed too: the node's error is the task's, as LangGraph
            routed = routed_rows(t) if t.writes and not t.done else []
            rows.append((ERROR, routed[0][1][1] if routed else repr(t.error)))
            rows += routed
        if rows:
            out += write_records(t.id, rows, serde, t.name, untracked)
    return out


def inbox_entries(run: Run) -> list[InboxEntry] | None:
    """The thread's inbox entries when they differ from what the index holds, else None.

    Only the root run of a thread keeps the index: its pending interrupts include those of its
    subgraphs.
    """
    if run.parent is not None:
        return None
    pending = run.pending()
    ids = {i.id for _, i in pending}
    if ids == run.indexed:
        return None
    run.indexed = ids
    serde = run.serde
    return [
        InboxEntry(
            thread_id=str(run.thread_id),
            interrupt_id=i.id,
            checkpoint_ns=run.ns,
            node=t.name,
            value=serde.dumps(i.value, channel=f"interrupt of {t.name!r}"),
            created_at=i.created_at or now_iso(),
            deadline=i.deadline,
            on_timeout=(
                None
                if i.deadline is None
                else serde.dumps(i.on_timeout, channel=f"on_timeout of {t.name!r}")
            ),
            graph=run.graph.name,
        )
        for t, i in pending
    ]
