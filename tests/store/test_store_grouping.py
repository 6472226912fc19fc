"""Group commit on every durable driver: many concurrent calls share batches, each caller gets
its own results and its own errors."""

from __future__ import annotations

import asyncio

import pytest

from hitl_async import StoreValueError
from hitl_async.store import BackendStore, GetOp, PutOp, SearchOp
from hitl_async.store.grouping import Grouper

pytestmark = pytest.mark.anyio


async def test_concurrent_calls_each_get_their_own_results(store: BackendStore) -> None:
    await asyncio.gather(*(store.aput(("g", f"u{i % 5}"), f"k{i}", {"i": i}) for i in range(200)))
    got = await asyncio.gather(*(store.aget(("g", f"u{i % 5}"), f"k{i}") for i in range(200)))
    assert [item.value["i"] for item in got] == list(range(200))  # type: ignore[union-attr]
    found = await asyncio.gather(
        *(store.asearch(("g", f"u{u}"), filter={"i": {"$lt": 50}}, limit=100) for u in range(5))
    )
    assert [sorted(i.value["i"] for i in page) for page in found] == [
        list(range(u, 50, 5)) for u in range(5)
    ]


async def test_a_bad_call_fails_alone(store: BackendStore) -> None:
    async def bad() -> None:
        await store.aput(("g",), "bad", {"when": object()})

    results = await asyncio.gather(
        *(store.aput(("g",), f"k{i}", {"i": i}) for i in range(30)), bad(), return_exceptions=True
    )
    assert isinstance(results[-1], StoreValueError)
    assert all(r is None for r in results[:-1])
    assert len(await store.asearch(("g",), limit=100)) == 30


async def test_merged_calls_keep_their_order_and_their_own_results(store: BackendStore) -> None:
    """Calls that wait together run as one batch: puts of the same item land in call order (the
    last call wins), each call's reads see the state before the batch, and each caller gets the
    results of its own operations in its own order."""
    await store.aput(("m",), "k", {"v": 0})
    blocker = asyncio.ensure_future(store.aput(("m",), "other", {"v": -1}))  # in flight first
    calls = [
        store.abatch([PutOp(("m",), "k", {"v": 1}), GetOp(("m",), "k")]),
        store.abatch([GetOp(("m",), "k"), SearchOp(("m",), {"v": 0})]),
        store.abatch([PutOp(("m",), "k", {"v": 2}), PutOp(("m",), "new", {"v": 3})]),
        store.abatch([PutOp(("m",), "k", {"v": 4}), GetOp(("m",), "new")]),
    ]
    first, second, third, fourth = await asyncio.gather(*calls)
    await blocker
    assert first[0] is None and first[1].value == {"v": 0}  # type: ignore[union-attr]
    assert second[0].value["v"] in (0, 1)  # type: ignore[union-attr]  # merged, or after first
    assert all(item.value == {"v": 0} for item in second[1])  # type: ignore[union-attr]
    assert third == [None, None]
    assert fourth[0] is None
    assert (await store.aget(("m",), "k")).value == {"v": 4}  # type: ignore[union-attr]
    assert (await store.aget(("m",), "new")).value == {"v": 3}  # type: ignore[union-attr]


async def test_grouper_merges_waiting_calls() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def run(ops: list[int]) -> list[int]:
        batches.append(ops)
        await gate.wait()
        return [op * 10 for op in ops]

    grouper = Grouper(run, batches_in_flight=1)
    first = asyncio.ensure_future(grouper.submit([1]))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(grouper.submit([n, n + 1])) for n in (2, 4, 6)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == [10]
    assert [await r for r in rest] == [[20, 30], [40, 50], [60, 70]]
    assert batches == [[1], [2, 3, 4, 5, 6, 7]]  # one batch for the three that waited


async def test_grouper_failure_reaches_every_caller_of_the_batch() -> None:
    gate = asyncio.Event()
    calls = 0

    async def run(ops: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        await gate.wait()
        if calls > 1:
            raise ConnectionError("database went away")
        return ops

    grouper = Grouper(run, batches_in_flight=1)
    first = asyncio.ensure_future(grouper.submit([1]))
    await asyncio.sleep(0)
    waiting = [asyncio.ensure_future(grouper.submit([n])) for n in (2, 3)]
    gate.set()
    assert await first == [1]
    for fut in waiting:
        with pytest.raises(ConnectionError, match="went away"):
            await fut


async def test_identical_concurrent_searches_get_their_own_items(store: BackendStore) -> None:
    for i in range(6):
        await store.aput(("d",), f"k{i}", {"i": i, "tags": ["x"]})
    pages = await asyncio.gather(
        *(store.asearch(("d",), filter={"i": {"$gte": 2}}) for _ in range(8))
    )
    assert all([i.key for i in page] == ["k5", "k4", "k3", "k2"] for page in pages)
    pages[0][0].value["tags"].append("mutated")
    assert all(page[0].value["tags"] == ["x"] for page in pages[1:])


async def test_sqlite_long_reads_leave_the_event_loop(tmp_path: object) -> None:
    """SQLite reads run on the event loop's thread only while they are short: a search that
    scans thousands of items is interrupted there and answered by the store's thread."""
    from apps.services import require_package

    require_package("hitl_async_sqlite", "drivers/sqlite")
    from hitl_async.store import PutOp, connect_store

    store = connect_store(f"sqlite:///{tmp_path}/long.db")
    await store.setup()
    await store.abatch([PutOp(("big",), f"k{i}", {"i": i, "pad": "x" * 50}) for i in range(5000)])
    calls: list[str] = []
    backend = store.backend  # type: ignore[attr-defined]
    original = backend._call

    async def spy(fn: object, sync: bool) -> object:
        calls.append("thread")
        return await original(fn, sync)

    backend._call = spy
    found = await store.asearch(("big",), filter={"i": 0})  # the oldest: a scan of all 5000
    assert [item.key for item in found] == ["k0"]
    assert calls == ["thread"]  # interrupted inline, answered by the thread
    calls.clear()
    assert (await store.aget(("big",), "k7")).value["i"] == 7  # type: ignore[union-attr]
    assert [i.key for i in await store.asearch(("big",), limit=2)] == ["k4999", "k4998"]
    assert calls == []  # short reads stayed on the loop's thread
    await store.aclose()


async def test_sqlite_writes_run_inline_unless_the_database_is_locked(tmp_path: object) -> None:
    """A SQLite put commits on the event loop's thread when nothing else writes; while another
    connection holds the write lock, it waits on the store's thread instead (the loop stays
    free) and lands once the lock is released."""
    import sqlite3

    from apps.services import require_package

    require_package("hitl_async_sqlite", "drivers/sqlite")
    from hitl_async.store import connect_store

    path = f"{tmp_path}/locked.db"
    store = connect_store(f"sqlite:///{path}")
    await store.setup()
    calls: list[str] = []
    backend = store.backend  # type: ignore[attr-defined]
    original = backend._call

    async def spy(fn: object, sync: bool) -> object:
        calls.append("thread")
        return await original(fn, sync)

    backend._call = spy
    await store.aput(("w",), "inline", {"n": 1})
    assert calls == []
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    put = asyncio.ensure_future(store.aput(("w",), "waited", {"n": 2}))
    ticks = 0
    while not calls and ticks < 1000:  # the loop keeps running while the put waits
        await asyncio.sleep(0.001)
        ticks += 1
    assert calls == ["thread"] and not put.done()
    other.execute("COMMIT")
    await put
    other.close()
    got = await store.aget(("w",), "waited")
    assert got is not None and got.value == {"n": 2}
    assert [i.key for i in await store.asearch(("w",))] == ["waited", "inline"]
    await store.aclose()
