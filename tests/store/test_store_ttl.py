"""TTLs on every driver: expiry, refresh on read, defaults, sweeping (and the sweeper task).

TTLs are in minutes, as in LangGraph; 0.01 minutes is 0.6 s. Margins are generous: an item is
checked well before and well after its expiry."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from hitl_async.store import BackendStore, GetOp, InvalidStoreRequestError, PutOp

pytestmark = pytest.mark.anyio

TTL = 0.01  # minutes: 0.6 s
LIFE = TTL * 60
MakeStore = Callable[..., BackendStore]


async def test_item_expires_and_is_swept(store: BackendStore) -> None:
    await store.aput(("t",), "short", {"v": 1}, ttl=TTL)
    await store.aput(("t",), "forever", {"v": 2})
    assert await store.aget(("t",), "short", refresh_ttl=False) is not None
    await anyio.sleep(LIFE * 1.5)
    # Expired but not yet swept: reads no longer see it (omit_expired defaults to True).
    assert await store.aget(("t",), "short") is None
    assert [i.key for i in await store.asearch(("t",))] == ["forever"]
    assert await store.asweep_ttl() == 1
    assert await store.asweep_ttl() == 0
    assert [i.key for i in await store.asearch(("t",))] == ["forever"]


async def test_reads_refresh_the_ttl(store: BackendStore) -> None:
    await store.aput(("t",), "get", {"v": 1}, ttl=TTL)
    await store.aput(("t",), "search", {"v": 2}, ttl=TTL)
    await store.aput(("t",), "cold", {"v": 3}, ttl=TTL)
    for _ in range(3):  # 3 x 0.4 of the TTL: alive only because each read refreshed it
        await anyio.sleep(LIFE * 0.4)
        assert await store.aget(("t",), "get") is not None
        assert [i.key for i in await store.asearch(("t",), filter={"v": 2})] == ["search"]
    assert await store.aget(("t",), "cold", refresh_ttl=False) is None
    await anyio.sleep(LIFE * 1.5)
    assert await store.asearch(("t",), refresh_ttl=False) == []


async def test_refresh_false_does_not_extend(store: BackendStore) -> None:
    await store.aput(("t",), "k", {"v": 1}, ttl=TTL)
    await anyio.sleep(LIFE * 0.6)
    assert await store.aget(("t",), "k", refresh_ttl=False) is not None
    assert await store.asearch(("t",), refresh_ttl=False) != []
    await anyio.sleep(LIFE * 0.6)
    assert await store.aget(("t",), "k") is None


async def test_put_replaces_or_removes_the_ttl(store: BackendStore) -> None:
    await store.aput(("t",), "k", {"v": 1}, ttl=TTL)
    await store.aput(("t",), "k", {"v": 2}, ttl=None)  # no expiry any more
    await anyio.sleep(LIFE * 1.5)
    assert await store.asweep_ttl() == 0
    assert (await store.aget(("t",), "k")).value == {"v": 2}  # type: ignore[union-attr]


async def test_default_ttl_and_refresh_config(make_store: MakeStore) -> None:
    store = make_store(ttl={"default_ttl": TTL, "refresh_on_read": False})
    await store.setup()  # connected before the clock matters
    await store.aput(("t",), "default", {"v": 1})
    await store.aput(("t",), "kept", {"v": 2}, ttl=None)
    await anyio.sleep(LIFE * 0.6)
    assert await store.aget(("t",), "default") is not None  # read without refresh (config)
    await anyio.sleep(LIFE * 0.6)
    assert await store.aget(("t",), "default") is None
    assert await store.aget(("t",), "kept") is not None
    assert await store.alist_namespaces() == [("t",)]


async def test_expired_namespaces_are_not_listed(store: BackendStore) -> None:
    await store.aput(("gone",), "k", {}, ttl=TTL)
    await store.aput(("mixed",), "a", {}, ttl=TTL)
    await store.aput(("mixed",), "b", {})
    await anyio.sleep(LIFE * 1.5)
    assert await store.alist_namespaces() == [("mixed",)]


async def test_omit_expired_false_shows_unswept_items(make_store: MakeStore) -> None:
    store = make_store(ttl={"omit_expired": False})
    await store.setup()  # connected before the clock matters
    await store.aput(("t",), "k", {"v": 1}, ttl=TTL)
    await anyio.sleep(LIFE * 1.5)
    assert await store.aget(("t",), "k", refresh_ttl=False) is not None  # as LangGraph's default
    assert await store.alist_namespaces() == [("t",)]
    assert await store.asweep_ttl() == 1
    assert await store.aget(("t",), "k") is None


async def test_sweeper_task(make_store: MakeStore) -> None:
    store = make_store(ttl={"sweep_interval_minutes": TTL / 3})
    await store.setup()  # connected before the clock matters
    await store.aput(("t",), "k", {"v": 1}, ttl=TTL)
    task = await store.start_ttl_sweeper()
    assert await store.start_ttl_sweeper() is task  # one sweeper per store
    with anyio.fail_after(10):
        while await store.aget(("t",), "k", refresh_ttl=False) is not None or (
            await store.asweep_ttl()
        ):
            await anyio.sleep(0.05)
    assert await store.stop_ttl_sweeper(timeout=5)
    assert task.done()


async def test_sync_sweep(store: BackendStore) -> None:
    await store.aput(("t",), "k", {"v": 1}, ttl=TTL)
    await anyio.sleep(LIFE * 1.5)
    assert await anyio.to_thread.run_sync(store.sweep_ttl) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("ttl", [0, -1, "5", True])
async def test_bad_ttl_is_refused(store: BackendStore, ttl: object) -> None:
    with pytest.raises(InvalidStoreRequestError, match="ttl"):
        await store.aput(("t",), "k", {"v": 1}, ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(InvalidStoreRequestError, match="ttl"):
        await store.abatch([PutOp(("t",), "k", {"v": 1}, ttl=ttl)])  # type: ignore[arg-type]
    assert await store.abatch([GetOp(("t",), "k")]) == [None]
