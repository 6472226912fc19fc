"""Rows damaged inside the store are reported by a library error naming the thread, on every
driver, and one damaged inbox row never hides or breaks the others.

Each test damages the fields a driver keeps itself (checkpoint versions and metadata, inbox
and run-queue rows) behind the saver's back, as a bit flip, a hand edit or another program
would, then reads through the saver and the graph: `CheckpointCorruptError` /
`CorruptRecordError` naming the thread, never a raw `JSONDecodeError`, `TypeError`,
`AttributeError` or Lua error; the inbox lists every healthy entry and the damaged one with
`damaged` saying why (also with a graph filter: a garbled entry is never silently dropped).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from apps.services import POSTGRES_URL
from apps.stores import SharedStore
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    CheckpointCorruptError,
    CorruptRecordError,
    InboxQuery,
    StateGraph,
    Worker,
    interrupt,
)

pytestmark = pytest.mark.anyio


class State(TypedDict):
    answer: str


def _graph(saver: Any) -> Any:
    def ask(state: State) -> dict[str, str]:
        return {"answer": interrupt("ok?", timeout=3600, on_timeout="no")}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver, name="damaged")


async def _execute(store: SharedStore, sql: str, *args: Any) -> None:
    """Run SQL on the store's database behind the saver's back."""
    if store.kind == "sqlite":
        conn = sqlite3.connect(store.url.removeprefix("sqlite:///"))
        try:
            conn.execute(sql.replace("__S__.", ""), args)
            conn.commit()
        finally:
            conn.close()
        return
    import asyncpg

    conn2 = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn2.execute(sql.replace("__S__", f'"{store.options["schema"]}"'), *args)
    finally:
        await conn2.close()


async def _redis(store: SharedStore) -> Any:
    saver = store.connect()
    return saver, await saver.get_client()


async def _damage_inbox_entry(store: SharedStore, thread_id: str) -> None:
    """Damage the fields the driver keeps itself where its store allows (PostgreSQL's typed
    columns keep a row readable: there the damage is in the bytes the engine serialized)."""
    if store.kind == "redis":
        saver, client = await _redis(store)
        try:
            data_key = f"{store.options['prefix']}:inbox:data"
            for member, data in (await client.hgetall(data_key)).items():
                if member.decode().split(".")[1] == thread_id.encode().hex():
                    flipped = bytearray(data)
                    flipped[len(flipped) // 2] ^= 0x20
                    await client.hset(data_key, member, bytes(flipped))
        finally:
            await saver.aclose()
    elif store.kind == "sqlite":
        await _execute(store, "UPDATE inbox SET deadline = 'soon' WHERE thread_id = ?", thread_id)
    else:
        await _execute(
            store, "UPDATE __S__.inbox SET value = '\\xc1' WHERE thread_id = $1", thread_id
        )


async def test_one_damaged_inbox_entry_never_hides_the_others(shared_store: SharedStore) -> None:
    saver = shared_store.connect()
    graph = _graph(saver)
    try:
        for t in ("a", "b", "c"):
            await graph.ainvoke({"answer": ""}, {"configurable": {"thread_id": t}})
        await _damage_inbox_entry(shared_store, "b")
        if shared_store.kind == "postgres":
            # PostgreSQL's typed columns keep a row readable: damage there is in the bytes the
            # engine serialized (the serializer's checksums); the entry must still be listed.
            await _execute(
                shared_store, "UPDATE __S__.inbox SET value = '\\xc1' WHERE thread_id = $1", "b"
            )
        pending = await graph.ainbox(all_graphs=True)
        by_thread = {p.thread_id: p for p in pending}
        assert set(by_thread) >= {"a", "c"}
        assert by_thread["a"].damaged is None and by_thread["a"].value == "ok?"
        assert by_thread["c"].damaged is None and by_thread["c"].value == "ok?"
        bad = [p for p in pending if p.damaged is not None]
        assert len(bad) == 1 and bad[0].value is None
        assert bad[0].thread_id == "b"
        # A filter the damaged entry can no longer be checked against still lists it.
        filtered = await saver.list_inbox(InboxQuery(graph="damaged"))
        assert len(filtered) == 3 and sum(e.damaged is not None for e in filtered) == (
            0 if shared_store.kind == "postgres" else 1
        )
        # A worker firing deadlines goes on past it.
        worker = Worker(graph)
        assert await worker.fire_deadlines() == []
    finally:
        await saver.aclose()


async def test_damaged_checkpoint_fields_raise_a_library_error_naming_the_thread(
    shared_store: SharedStore,
) -> None:
    saver = shared_store.connect()
    graph = _graph(saver)
    cfg = {"configurable": {"thread_id": "hurt"}}
    try:
        await graph.ainvoke({"answer": ""}, cfg)
        await graph.ainvoke({"answer": ""}, {"configurable": {"thread_id": "fine"}})
        if shared_store.kind == "redis":
            _, client = await _redis(shared_store)
            base = f"{shared_store.options['prefix']}:{{t{b'hurt'.hex()}}}:cp:"
            for key in await client.keys(base + "*"):
                for field in await client.hkeys(key):
                    await client.hset(key, field, b"9999:garbage")
        elif shared_store.kind == "sqlite":
            await _execute(
                shared_store,
                "UPDATE checkpoints SET metadata = '{not json' WHERE thread_id = ?",
                "hurt",
            )
        else:
            await _execute(
                shared_store,
                "UPDATE __S__.checkpoints SET channel_versions = '{\"answer\": 1}' "
                "WHERE thread_id = $1",
                "hurt",
            )
        with pytest.raises(CheckpointCorruptError) as info:
            await graph.aget_state(cfg)
        assert info.value.thread_id == "hurt" and "hurt" in str(info.value)
        with pytest.raises(CheckpointCorruptError):
            await saver.history("hurt")
        assert (await graph.aget_state({"configurable": {"thread_id": "fine"}})).interrupts
    finally:
        await saver.aclose()


async def test_a_damaged_run_request_raises_a_library_error_naming_the_thread(
    shared_store: SharedStore,
) -> None:
    saver = shared_store.connect()
    graph = _graph(saver)
    try:
        handle = await graph.asubmit({"answer": ""}, {"configurable": {"thread_id": "queued"}})
        if shared_store.kind == "redis":
            _, client = await _redis(shared_store)
            key = f"{shared_store.options['prefix']}:run:{handle.id.encode().hex()}"
            await client.hset(key, "attempts", "many")
        elif shared_store.kind == "sqlite":
            await _execute(shared_store, "UPDATE runs SET payload = 'text' WHERE id = ?", handle.id)
        else:
            await _execute(
                shared_store, "UPDATE __S__.runs SET status = 'zombie' WHERE id = $1", handle.id
            )
        with pytest.raises(CorruptRecordError) as info:
            await handle.status()
        assert info.value.thread_id == "queued" and handle.id in str(info.value)
    finally:
        await saver.aclose()
