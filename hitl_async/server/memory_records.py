"""`MemoryRecordStore`: server records in this process's memory (for `memory://` stores)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

from hitl_async.server.records import (
    ACTIVE_RUN_STATUSES,
    AssistantRecord,
    RecordStore,
    RunRecord,
    StreamEvent,
    ThreadQuery,
    ThreadRecord,
    search_in_memory,
)

__all__ = ["MemoryRecordStore"]


class MemoryRecordStore(RecordStore):
    """Records in dicts; every method is atomic because it never awaits midway."""

    def __init__(self) -> None:
        super().__init__()
        self.assistants: dict[str, AssistantRecord] = {}
        self.threads: dict[str, ThreadRecord] = {}
        self.runs: dict[str, RunRecord] = {}
        self.events: dict[str, list[StreamEvent]] = {}
        self._ids = itertools.count(1)

    async def destroy(self) -> None:
        self.assistants.clear()
        self.threads.clear()
        self.runs.clear()
        self.events.clear()

    async def put_assistant(self, record: AssistantRecord, *, if_absent: bool = False) -> bool:
        if if_absent and record.assistant_id in self.assistants:
            return False
        self.assistants[record.assistant_id] = copy.deepcopy(record)
        return True

    async def get_assistant(self, assistant_id: str) -> AssistantRecord | None:
        found = self.assistants.get(assistant_id)
        return copy.deepcopy(found) if found is not None else None

    async def list_assistants(self) -> list[AssistantRecord]:
        return [copy.deepcopy(a) for a in self.assistants.values()]

    async def insert_thread(self, record: ThreadRecord) -> bool:
        if record.thread_id in self.threads:
            return False
        self.threads[record.thread_id] = copy.deepcopy(record)
        return True

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        found = self.threads.get(thread_id)
        return copy.deepcopy(found) if found is not None else None

    async def update_thread(
        self, thread_id: str, change: Callable[[ThreadRecord], ThreadRecord]
    ) -> ThreadRecord | None:
        found = self.threads.get(thread_id)
        if found is None:
            return None
        new = change(copy.deepcopy(found))
        self.threads[thread_id] = copy.deepcopy(new)
        return new

    async def delete_thread(self, thread_id: str, *, keep_runs: bool = False) -> bool:
        existed = self.threads.pop(thread_id, None) is not None
        if keep_runs:
            return existed
        for run_id in [r.run_id for r in self.runs.values() if r.thread_id == thread_id]:
            self.runs.pop(run_id, None)
            self.events.pop(run_id, None)
        return existed

    async def search_threads(self, query: ThreadQuery) -> list[ThreadRecord]:
        return [copy.deepcopy(t) for t in search_in_memory(list(self.threads.values()), query)]

    async def insert_run(self, record: RunRecord, *, exclusive: bool) -> bool:
        if exclusive and any(
            r.thread_id == record.thread_id and r.status in ACTIVE_RUN_STATUSES
            for r in self.runs.values()
        ):
            return False
        self.runs[record.run_id] = copy.deepcopy(record)
        return True

    async def get_run(self, run_id: str) -> RunRecord | None:
        found = self.runs.get(run_id)
        return copy.deepcopy(found) if found is not None else None

    async def list_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[RunRecord]:
        runs = [
            r
            for r in self.runs.values()
            if r.thread_id == thread_id and (status is None or r.status == status)
        ]
        runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return [copy.deepcopy(r) for r in runs[offset : offset + limit]]

    async def update_run(
        self, run_id: str, change: Callable[[RunRecord], RunRecord]
    ) -> RunRecord | None:
        found = self.runs.get(run_id)
        if found is None:
            return None
        new = change(copy.deepcopy(found))
        self.runs[run_id] = copy.deepcopy(new)
        return new

    async def delete_run(self, run_id: str) -> bool:
        self.events.pop(run_id, None)
        return self.runs.pop(run_id, None) is not None

    async def append_event(self, run_id: str, event: str, data: str) -> str:
        event_id = str(next(self._ids))
        self.events.setdefault(run_id, []).append(StreamEvent(event_id, event, data))
        self.waiters.notify(run_id)
        return event_id

    async def read_events(
        self, run_id: str, after: str | None = None, limit: int = 1000
    ) -> list[StreamEvent]:
        log = self.events.get(run_id, [])
        if after is not None:
            try:
                cut = int(after)
            except ValueError:
                cut = 0
            log = [e for e in log if int(e.id) > cut]
        return list(log[:limit])
