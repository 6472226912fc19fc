"""The server record stores (memory, SQLite, PostgreSQL, Redis) behave alike: atomic exclusive
run inserts and read-modify-writes, thread search, and event logs that wake readers of another
store instance (another process) when an event is appended."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from apps.servers import store_url

from hitl_async.server.records import (
    RecordStore,
    RunRecord,
    ThreadQuery,
    ThreadRecord,
    open_records,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[list[RecordStore]]:
    """Two record stores on the same place (one for memory://, which is per process)."""
    url = "memory://" if request.param == "memory" else store_url(request.param, tmp_path)
    first = open_records(url)
    second = first if request.param == "memory" else open_records(url)
    await first.setup()
    await second.setup()
    try:
        yield [first, second]
    finally:
        await first.destroy()
        await first.aclose()
        if second is not first:
            await second.aclose()


def thread(
    metadata: dict[str, object] | None = None, created: str = "2026-01-01T00:00:00+00:00"
) -> ThreadRecord:
    return ThreadRecord(uuid.uuid4().hex, created, created, metadata=dict(metadata or {}))


def run(
    thread_id: str, status: str = "pending", created: str = "2026-01-01T00:00:01+00:00"
) -> RunRecord:
    return RunRecord(uuid.uuid4().hex, thread_id, "a", created, created, status=status)


async def test_threads_and_search(stores: list[RecordStore]) -> None:
    records, _ = stores
    a = thread({"owner": "ada", "n": 1}, "2026-01-01T00:00:01+00:00")
    b = thread({"owner": "bob", "nested": {"x": 1, "y": 2}}, "2026-01-01T00:00:02+00:00")
    assert await records.insert_thread(a) and await records.insert_thread(b)
    assert not await records.insert_thread(a)
    assert (await records.get_thread(a.thread_id)) == a

    def busy(t: ThreadRecord) -> ThreadRecord:
        t.status = "busy"
        return t

    assert (await records.update_thread(b.thread_id, busy)).status == "busy"
    assert await records.update_thread("missing", busy) is None
    newest = await records.search_threads(ThreadQuery(limit=10))
    assert [t.thread_id for t in newest] == [b.thread_id, a.thread_id]
    assert [
        t.thread_id for t in await records.search_threads(ThreadQuery(sort_order="asc", limit=1))
    ] == [a.thread_id]
    assert [t.thread_id for t in await records.search_threads(ThreadQuery(status="busy"))] == [
        b.thread_id
    ]
    assert [
        t.thread_id for t in await records.search_threads(ThreadQuery(metadata={"owner": "ada"}))
    ] == [a.thread_id]
    assert [
        t.thread_id
        for t in await records.search_threads(ThreadQuery(metadata={"nested": {"x": 1}}))
    ] == [b.thread_id]
    assert await records.search_threads(ThreadQuery(metadata={"owner": "eve"})) == []
    assert await records.count_threads(ThreadQuery()) == 2
    assert await records.delete_thread(a.thread_id) and not await records.delete_thread(a.thread_id)
    assert await records.get_thread(a.thread_id) is None


async def test_exclusive_runs_are_atomic(stores: list[RecordStore]) -> None:
    one, two = stores
    t = thread()
    await one.insert_thread(t)
    outcomes: list[bool] = []

    async def try_insert(store: RecordStore) -> None:
        outcomes.append(await store.insert_run(run(t.thread_id), exclusive=True))

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(try_insert, stores[i % 2])
    assert sorted(outcomes) == [False] * 7 + [True]
    (active,) = await two.active_runs(t.thread_id)
    assert await one.insert_run(run(t.thread_id), exclusive=False)

    def finish(r: RunRecord) -> RunRecord:
        r.status = "success"
        return r

    await two.update_run(active.run_id, finish)
    assert len(await one.active_runs(t.thread_id)) == 1
    listed = await one.list_runs(t.thread_id)
    assert len(listed) == 2 and {r.status for r in listed} == {"success", "pending"}
    assert [r.status for r in await one.list_runs(t.thread_id, status="success")] == ["success"]
    assert await one.delete_run(active.run_id)
    assert await one.get_run(active.run_id) is None


async def test_concurrent_updates_lose_nothing(stores: list[RecordStore]) -> None:
    one, two = stores
    t = thread({"count": 0})
    await one.insert_thread(t)

    def bump(current: ThreadRecord) -> ThreadRecord:
        current.metadata["count"] = int(current.metadata["count"]) + 1
        return current

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(stores[i % 2].update_thread, t.thread_id, bump)
    assert (await two.get_thread(t.thread_id)).metadata["count"] == 20


async def test_event_log_wakes_other_readers(stores: list[RecordStore]) -> None:
    writer, reader = stores
    run_id = uuid.uuid4().hex
    got: list[str] = []

    async def read() -> None:
        after = None
        while len(got) < 3:
            for event in await reader.wait_events(run_id, after, 10.0):
                after = event.id
                got.append(event.data)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.sleep(0.1)
        with anyio.fail_after(5):  # notifications, not the 5 s poll, deliver them
            for n in range(3):
                await writer.append_event(run_id, "values", str(n))
                await anyio.sleep(0.05)
            while len(got) < 3:
                await anyio.sleep(0.01)
    assert got == ["0", "1", "2"]
    events = await reader.read_events(run_id)
    assert [e.data for e in await reader.read_events(run_id, events[0].id)] == ["1", "2"]
    assert await reader.read_events(run_id, events[-1].id) == []


async def test_followers_see_other_processes_appends_and_skip_idle_reads(
    stores: list[RecordStore],
) -> None:
    """A follower of a run's log gets the events another store instance (another process)
    appends; `others_wrote` says whether the reader must look again: yes after the other
    instance wrote, and — where the driver can tell (SQLite) — no while nobody did."""
    writer, reader = stores
    run_id = uuid.uuid4().hex
    changed, token = await reader.others_wrote(None)
    assert changed
    got: list[str] = []

    async def follow() -> None:
        after = None
        async with reader.follow(run_id) as follower:
            while len(got) < 3:
                for event in await follower.next(after, 10.0):
                    after = event.id
                    got.append(event.data)

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        await anyio.sleep(0.1)
        with anyio.fail_after(5):
            for n in range(3):
                await writer.append_event(run_id, "values", str(n))
                await anyio.sleep(0.05)
            while len(got) < 3:
                await anyio.sleep(0.01)
    assert got == ["0", "1", "2"]
    if writer is not reader:
        await anyio.sleep(reader.poll_interval)  # past the shared probe's lifetime
        assert (await reader.others_wrote(token))[0]  # the writer committed since `token`
    if type(reader).__module__ == "hitl_async_sqlite.records":
        _, token = await reader.others_wrote(None)
        await anyio.sleep(reader.poll_interval)
        assert (await reader.others_wrote(token)) == (False, token)  # nobody else wrote
