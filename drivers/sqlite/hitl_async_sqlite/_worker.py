"""The connection's worker thread: one `sqlite3` connection, one job queue, any event loop.

A `Worker` owns a thread that opens the connection on its first job and then runs every job of
its saver in arrival order. A job carries its own way to wake its caller, set by the caller: a
`schedule` function of the caller's loop (`loop.call_soon_threadsafe` under asyncio,
`TrioToken.run_sync_soon` under trio) and a `wake` callback to schedule there. Nothing here is
bound to an event loop: callers from different loops and threads may share one worker. The
callers of one batch are woken with one `schedule` call per loop, not one per job.

Group commit happens here: when the worker takes a write job, it also takes every write job
queued right behind it (up to `max_batch`) and applies them in one transaction
(`_ops.run_batch`). Writes queue up while a batch is in flight, so N concurrent commits cost a
few transactions, not N; an idle worker sends a lone write at once, as a batch of one.

A job still queued when its caller is cancelled is dropped (`cancel`); once the worker has
claimed a job it runs to the end, and only the caller stops waiting for it.

A caller that may block its own thread (a sync-API caller's loop, which serves that one caller)
can run a job itself instead (`run_here`): only when nothing is queued or running, on the same
connection (so the order of this saver's jobs, its leases and its data_version stay as if the
worker ran it), and without waiting for another connection's lock: busy, it hands the job to the
worker, which waits `busy_timeout` as usual. That saves the two thread wake-ups of a round trip.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

from hitl_async.checkpoint.lifecycle import forked_away
from hitl_async_sqlite import _ops
from hitl_async_sqlite._fork_gate import hold_during_fork

__all__ = ["CLOSE", "READ", "WRITE", "Job", "Worker"]

READ, WRITE, CLOSE = "read", "write", "close"
Schedule = Callable[..., object]
"""`schedule(callback, *args)` runs `callback(*args)` soon in a caller's event loop; callable from
any thread (`loop.call_soon_threadsafe`, `TrioToken.run_sync_soon`)."""
_QUEUED, _CLAIMED, _CANCELLED = 0, 1, 2


def _ignore() -> None:
    pass


class Job:
    """One unit of work for the worker thread and, once done, its outcome.

    `fn(conn)` runs on the worker thread with the raw `sqlite3.Connection`. READ jobs (any
    non-batched call) run alone; WRITE jobs are `_ops.Job`s run inside a batch transaction; a
    CLOSE job closes the connection and ends the thread. Once `ok` and `value` are set, the worker
    thread has `schedule` (equal for jobs of one loop) run `wake()` in the caller's loop.
    `committed(value)`, if set, runs on the worker thread once a WRITE job's transaction committed
    (to wake this process's waiters: `PRAGMA data_version` ignores the connection's own writes).
    """

    __slots__ = ("committed", "fn", "kind", "ok", "schedule", "state", "value", "wake")

    def __init__(
        self,
        kind: str,
        fn: Callable[[sqlite3.Connection], Any],
        committed: Callable[[Any], object] | None = None,
    ) -> None:
        self.kind = kind
        self.fn = fn
        self.committed = committed
        self.schedule: Schedule | None = None
        self.wake: Callable[[], object] = _ignore
        self.state = _QUEUED
        self.ok = False
        self.value: Any = None

    def outcome(self) -> Any:
        """The result, or raise the job's exception (call only after notification)."""
        if self.ok:
            return self.value
        raise self.value


class Worker:
    """A daemon thread running the jobs of one saver on its one `sqlite3` connection."""

    def __init__(
        self,
        name: str,
        opener: Callable[[], sqlite3.Connection],
        max_batch: int,
        busy_ms: int = 0,
    ) -> None:
        self._opener = opener
        self._max_batch = max_batch
        self._busy_ms = busy_ms
        self._conn: sqlite3.Connection | None = None
        self._queue: SimpleQueue[Job] = SimpleQueue()
        self._lock = threading.Lock()  # guards Job.state, _stopping and _inflight
        self._stopping = False
        self._inflight = 0
        """Jobs submitted and not yet done by the worker (a caller runs a job itself only at 0)."""
        self._using = threading.Lock()
        """Held by whoever runs statements on the connection: the worker or a caller."""
        hold_during_fork(self._using)
        self._patient = True
        """Whether the connection waits `busy_ms` for another connection's lock (the worker's
        setting); a caller running a job itself sets it not to wait, the worker sets it back."""
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        _LIVE.add(self)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def submit(self, job: Job) -> None:
        """Queue `job`; a CLOSE job is the last one the worker accepts."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the SQLite connection is closed")
            if job.kind == CLOSE:
                self._stopping = True
            self._inflight += 1
            self._queue.put(job)

    def cancel(self, job: Job) -> bool:
        """Drop `job` if the worker has not claimed it yet; True if it will never run."""
        with self._lock:
            if job.state == _QUEUED:
                job.state = _CANCELLED
            return job.state == _CANCELLED

    def run_here(self, job: Job) -> bool:
        """Run the READ or WRITE `job` in the calling thread, if the worker is idle (nothing
        queued or running) and its connection open; True if it ran (its outcome is set, its
        `committed` called), False if the caller must `submit` it. Another connection holding a
        lock makes it False too, with nothing changed: the worker is the one that waits."""
        with self._lock:
            conn = self._conn
            if self._stopping or self._inflight or conn is None:
                return False
            if not self._using.acquire(blocking=False):  # another caller runs a job here
                return False
        try:
            if self._patient:
                conn.execute("PRAGMA busy_timeout = 0")
                self._patient = False
            if job.kind == WRITE:
                try:
                    ((ok, value),) = _ops.run_batch(conn, [job.fn])
                except sqlite3.OperationalError as exc:
                    if _busy(exc):  # rolled back: nothing of it stored
                        return False
                    ok, value = False, exc
                except BaseException as exc:
                    ok, value = False, exc
                job.ok, job.value = ok, value
                if ok and job.committed is not None:
                    with contextlib.suppress(Exception):  # a wake-up must not fail the write
                        job.committed(value)
            else:
                try:
                    job.ok, job.value = True, job.fn(conn)
                except sqlite3.OperationalError as exc:
                    if _busy(exc) and not conn.in_transaction:
                        return False
                    job.ok, job.value = False, exc
                except BaseException as exc:
                    job.ok, job.value = False, exc
            job.state = _CLAIMED
            return True
        finally:
            self._using.release()

    def stop(self) -> None:
        """Close the connection and end the thread after the jobs already queued (no waiting)."""
        with contextlib.suppress(RuntimeError):  # already stopping
            self.submit(Job(CLOSE, _noop))

    # ------------------------------------------------------------------ worker thread

    def _claim(self, job: Job) -> bool:
        with self._lock:
            if job.state != _QUEUED:
                return False
            job.state = _CLAIMED
            return True

    @staticmethod
    def _settle(job: Job, ok: bool, value: Any) -> None:
        job.ok, job.value = ok, value
        if job.schedule is not None:
            with contextlib.suppress(Exception):  # the caller's loop is gone (see `_wake`)
                job.schedule(job.wake)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._opener()
        elif not self._patient:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._busy_ms)}")
            self._patient = True
        return self._conn

    def _main(self) -> None:
        held: Job | None = None  # a non-write job taken while gathering a batch
        while True:
            job = held if held is not None else self._queue.get()
            with self._using:
                taken, held = self._step(job)
            with self._lock:
                self._inflight -= taken
            if job.kind == CLOSE:
                return

    def _step(self, job: Job) -> tuple[int, Job | None]:
        """Run `job` (a write: with the writes queued right behind it); how many jobs that took
        off the queue, and the non-write job taken while gathering them, to run next."""
        if job.kind == WRITE:
            batch = [job]
            held = None
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except Empty:
                    break
                if more.kind != WRITE:
                    held = more
                    break
                batch.append(more)
            self._write([j for j in batch if self._claim(j)])
            return len(batch), held
        if job.kind == CLOSE:
            self._close(job)
        elif self._claim(job):
            try:
                value = job.fn(self._connection())
            except BaseException as exc:
                self._settle(job, False, exc)
            else:
                self._settle(job, True, value)
        return 1, None

    def _write(self, batch: list[Job]) -> None:
        if not batch:
            return
        try:
            results = _ops.run_batch(self._connection(), [j.fn for j in batch])
        except BaseException as exc:
            for job in batch:
                job.ok, job.value = False, exc
        else:
            for job, (ok, value) in zip(batch, results, strict=True):
                job.ok, job.value = ok, value
                if ok and job.committed is not None:
                    with contextlib.suppress(Exception):  # a wake-up must not fail the write
                        job.committed(value)
        _wake(batch)

    def _close(self, job: Job) -> None:
        self._claim(job)
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()
        except BaseException as exc:
            self._settle(job, False, exc)
        else:
            self._settle(job, True, None)
        finally:
            _LIVE.discard(self)


def _noop(conn: sqlite3.Connection) -> None:
    pass


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether `exc` is another connection's lock (SQLITE_BUSY or SQLITE_LOCKED)."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (5, 6)


def _call_all(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        callback()


def _wake(jobs: list[Job]) -> None:
    """From the worker thread: wake the callers of settled `jobs`, one hop per event loop."""
    by_loop: dict[Schedule, list[Callable[[], object]]] = {}
    for job in jobs:
        if job.schedule is not None:
            by_loop.setdefault(job.schedule, []).append(job.wake)
    for schedule, callbacks in by_loop.items():
        # The caller's loop may be closed (RuntimeError), or its trio run over (RunFinishedError,
        # a RuntimeError too): nobody waits any more, and the worker must live on regardless.
        with contextlib.suppress(Exception):
            schedule(_call_all, callbacks)


_LIVE: weakref.WeakSet[Worker] = weakref.WeakSet()


def _forget_in_child() -> None:
    """In a forked child the workers' threads do not exist and their connections are the
    parent's: never stop or close them here (see `hitl_async.checkpoint.lifecycle`)."""
    forked_away.extend(_LIVE)
    _LIVE.clear()


os.register_at_fork(after_in_child=_forget_in_child)


@atexit.register
def _shutdown() -> None:
    """At interpreter exit, let workers of savers never closed finish their queue and close the
    connection (so the WAL is checkpointed), instead of dying mid-way as daemon threads do."""
    workers = list(_LIVE)
    for worker in workers:
        worker.stop()
    for worker in workers:
        if worker.thread is not threading.current_thread():
            worker.thread.join(timeout=5)
