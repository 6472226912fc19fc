"""A run's event log, as every process sharing the store reads it: the control events and
signal keys by which an executor announces a run's end and a canceller asks it to stop
(`END_EVENT`, `CANCEL_EVENT`, `end_key`, `cancel_key`), and the waits on it — a run's end
(`wait_for_end`), its events live (`events`), a thread's runs one after another
(`thread_events`). `RunLog` is mixed into `RunService`; the executor writes the same log."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence

import anyio

from hitl_async.server.errors import ApiError, not_found
from hitl_async.server.records import (
    ACTIVE_RUN_STATUSES,
    RecordStore,
    RunRecord,
    StreamEvent,
)

__all__ = [
    "CANCEL_EVENT",
    "END_EVENT",
    "FINAL_RUN_STATUSES",
    "RunLog",
    "cancel_key",
    "end_key",
]

END_EVENT = "__end__"
"""The last event of a run's log (never sent to clients): data is the run's final status."""
CANCEL_EVENT = "__cancel__"
"""Asks the process executing the run to stop it: data is the action (interrupt or rollback)."""

FINAL_RUN_STATUSES = frozenset({"success", "error", "interrupted", "timeout"})
_THREAD_POLL = 0.25
"""Seconds between looks for new runs of a thread someone streams (`threads.join_stream`)."""
_IDLE_RECHECK = 5.0
"""Seconds a waiter for a run's events or end goes without reading the run record, when
nothing announced a change: it catches a run that ended without its end event."""


def end_key(run_id: str) -> str:
    """The signal key the run's end is announced on."""
    return f"end:{run_id}"


def cancel_key(run_id: str) -> str:
    """The signal key a request to stop the run is announced on."""
    return f"cancel:{run_id}"


class RunLog:
    """Waiting on runs through their logs (see the module), over `records`."""

    records: RecordStore

    async def wait_for_end(
        self, run_id: str, timeout: float | None = None, *, created: RunRecord | None = None
    ) -> RunRecord:
        """Wait until the run ends (the executor signals `end:{run_id}`), then return it. Without
        a signal it reads the run again every 5 s, or every `poll_interval` when the store
        says another process wrote. `created`: the record `create()` just returned, when no
        await came between (its end cannot have been signalled yet), instead of a first read."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: object = None
        fresh = created
        with self.records.waiters.subscribe(end_key(run_id)) as ended:
            while True:
                signalled = ended.take()
                run = self.records.recent_end(run_id) if signalled else fresh
                fresh = None
                if run is None:
                    run = await self.records.get_run(run_id)
                if run is None:
                    raise not_found("Run", run_id)
                if run.status in FINAL_RUN_STATUSES:
                    return run
                if deadline is not None and time.monotonic() >= deadline:
                    raise ApiError(408, f"run {run_id} is still running after {timeout} s")
                recheck = time.monotonic() + _IDLE_RECHECK
                if deadline is not None:
                    recheck = min(recheck, deadline)
                while (left := recheck - time.monotonic()) > 0:
                    with anyio.move_on_after(min(left, self.records.poll_interval)):
                        await ended.wait()
                    if ended.dirty:
                        break
                    changed, seen = await self.records.others_wrote(seen)
                    if changed:
                        break

    async def events(self, run_id: str, after: str | None = None) -> AsyncIterator[StreamEvent]:
        """The run's events after `after`, live, until its end event (control events hidden)."""
        last = after
        idle_rounds = 0
        checked = time.monotonic()
        async with self.records.follow(run_id) as follower:
            while True:
                found = await follower.next(last, _IDLE_RECHECK)
                if not found:
                    if time.monotonic() - checked < _IDLE_RECHECK:
                        continue  # (a poll that found nothing new: no need to look at the run)
                    checked = time.monotonic()
                    idle_rounds += 1
                    run = await self.records.get_run(run_id)
                    if run is None or (run.status in FINAL_RUN_STATUSES and idle_rounds > 1):
                        return
                    continue
                idle_rounds = 0
                checked = time.monotonic()
                for event in found:
                    last = event.id
                    if event.event == END_EVENT:
                        return
                    if event.event.startswith("__"):
                        continue
                    yield event

    async def thread_events(
        self, thread_id: str, modes: Sequence[str] | None = None, after: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """The events of the thread's runs, live (`threads.join_stream`): each run that is
        active now or starts later, followed from its first event, then `metadata {"status":
        "run_done", "run_id"}`. Ids are `run_id/event id`; after one (`Last-Event-ID`) the
        stream goes on from there: the rest of that run, then the runs created after it.
        `modes`: only those stream modes (metadata always); None: every mode the runs stream."""
        known: set[str] = set()
        resume_run, _, resume_event = (after or "").partition("/")
        runs = await self.records.list_runs(thread_id, limit=1000)
        if resume_run:
            base = next((r for r in runs if r.run_id == resume_run), None)
            if base is None:
                raise not_found("Run", resume_run)
            known = {
                r.run_id for r in runs if (r.created_at, r.run_id) < (base.created_at, base.run_id)
            }
            if resume_event == "end":
                known.add(resume_run)
        else:
            known = {r.run_id for r in runs if r.status not in ACTIVE_RUN_STATUSES}
        wanted = (
            None
            if modes is None
            else {"messages" if m.startswith("messages") else m for m in modes}
        )
        while True:
            for run in reversed(runs):  # oldest first
                if run.run_id in known:
                    continue
                known.add(run.run_id)
                start = resume_event if run.run_id == resume_run and resume_event != "end" else None
                async for event in self.events(run.run_id, start or None):
                    name = event.event.split("|", 1)[0].split("/", 1)[0]
                    if wanted is None or name == "metadata" or name in wanted:
                        yield StreamEvent(f"{run.run_id}/{event.id}", event.event, event.data)
                done = json.dumps({"status": "run_done", "run_id": run.run_id})
                yield StreamEvent(f"{run.run_id}/end", "metadata", done)
            await anyio.sleep(_THREAD_POLL)
            runs = await self.records.list_runs(thread_id, limit=100)
