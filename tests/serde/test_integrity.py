"""Checksums on stored values, on every driver: bits flipped in the bytes the store really holds
are reported as `CheckpointCorruptError` naming thread, checkpoint and channel — never loaded as
a different value.

The store is damaged behind the engine's back through its own client (the in-memory saver's
dicts, `sqlite3`, asyncpg, redis-py), one bit at a time, and repaired after each attempt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    CheckpointCorruptError,
    InMemorySaver,
    SerializationError,
    StateGraph,
    connect,
    interrupt,
)
from hitl_async.serde import HEADER_SIZE, Serializer, seal, unseal

pytestmark = pytest.mark.anyio

THREAD = "integrity-thread"
CONFIG = {"configurable": {"thread_id": THREAD}}
FLIPS = 40
DOC = {
    "amount": 1234.5,
    "approved": False,
    "customer": "Ada Lovelace",
    "items": [{"sku": "A-1", "qty": 3}, {"sku": "B-22", "qty": 1}],
    "due": dt.datetime(2026, 11, 24, 9, 33, 10, tzinfo=dt.UTC),
    "ref": uuid.UUID(int=42),
    "tags": ("refund", "priority"),
}


class State(TypedDict, total=False):
    doc: dict[str, Any]
    answer: str


def build(saver: Any) -> Any:
    def ask(state: State) -> dict[str, Any]:
        return {"answer": interrupt("approve?")}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


class Damageable:
    """A saver plus raw access to the stored bytes of one channel of THREAD (root namespace)."""

    kind = ""

    def __init__(self, saver: Any) -> None:
        self.saver = saver

    async def read(self, channel: str) -> bytes:
        raise NotImplementedError

    async def write(self, channel: str, data: bytes) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.saver.aclose()


class MemoryBlobs(Damageable):
    kind = "memory"

    def _key(self, channel: str) -> Any:
        blobs = self.saver._threads[THREAD][""].blobs
        return blobs, max(k for k in blobs if k[0] == channel)

    async def read(self, channel: str) -> bytes:
        blobs, key = self._key(channel)
        return bytes(blobs[key])

    async def write(self, channel: str, data: bytes) -> None:
        blobs, key = self._key(channel)
        blobs[key] = data


class SqliteBlobs(Damageable):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__(connect(f"sqlite:///{path}"))
        self.path = path

    def _query(self, sql: str, *args: Any) -> Any:
        import sqlite3

        with sqlite3.connect(self.path, isolation_level=None) as db:
            return db.execute(sql, args).fetchall()

    async def read(self, channel: str) -> bytes:
        rows = self._query(
            "SELECT data FROM blobs WHERE thread_id = ? AND channel = ? ORDER BY version DESC",
            THREAD,
            channel,
        )
        return bytes(rows[0][0])

    async def write(self, channel: str, data: bytes) -> None:
        self._query(
            "UPDATE blobs SET data = ? WHERE thread_id = ? AND channel = ?", data, THREAD, channel
        )


class PostgresBlobs(Damageable):
    kind = "postgres"

    def __init__(self) -> None:
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        super().__init__(connect(POSTGRES_URL, schema=self.schema))

    async def _conn(self) -> Any:
        import asyncpg

        return await asyncpg.connect(POSTGRES_URL)

    async def read(self, channel: str) -> bytes:
        conn = await self._conn()
        try:
            data = await conn.fetchval(
                f"SELECT data FROM {self.schema}.blobs WHERE thread_id = $1 AND channel = $2 "
                "ORDER BY version DESC LIMIT 1",
                THREAD,
                channel,
            )
        finally:
            await conn.close()
        return bytes(data)

    async def write(self, channel: str, data: bytes) -> None:
        conn = await self._conn()
        try:
            await conn.execute(
                f"UPDATE {self.schema}.blobs SET data = $1 WHERE thread_id = $2 AND channel = $3",
                data,
                THREAD,
                channel,
            )
        finally:
            await conn.close()

    async def aclose(self) -> None:
        await self.saver.destroy()
        await super().aclose()


class RedisBlobs(Damageable):
    kind = "redis"

    def __init__(self) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:12]}"
        super().__init__(connect(REDIS_URL, prefix=self.prefix))
        thread = "t" + THREAD.encode().hex()
        self.key = f"{self.prefix}:{{{thread}}}:blobs:"

    def _client(self) -> Any:
        import redis.asyncio

        return redis.asyncio.Redis.from_url(REDIS_URL)

    def _field(self, fields: list[bytes], channel: str) -> bytes:
        lp = f"{len(channel.encode())}:{channel}".encode()
        return max(f for f in fields if f.startswith(lp))

    async def read(self, channel: str) -> bytes:
        client = self._client()
        try:
            fields = await client.hkeys(self.key)
            data: bytes = await client.hget(self.key, self._field(fields, channel))
        finally:
            await client.aclose()
        return data

    async def write(self, channel: str, data: bytes) -> None:
        client = self._client()
        try:
            fields = await client.hkeys(self.key)
            await client.hset(self.key, self._field(fields, channel), data)
        finally:
            await client.aclose()

    async def aclose(self) -> None:
        await self.saver.destroy()
        await super().aclose()


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Damageable]:
    kind = request.param
    made: Damageable
    if kind == "memory":
        made = MemoryBlobs(InMemorySaver())
    elif kind == "sqlite":
        require_package("hitl_async_sqlite", "drivers/sqlite")
        made = SqliteBlobs(tmp_path / "integrity.db")
    elif kind == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        made = PostgresBlobs()
    else:
        require_package("hitl_async_redis", "drivers/redis")
        require_service("redis", REDIS_URL)
        made = RedisBlobs()
    await made.saver.setup()
    try:
        yield made
    finally:
        await made.aclose()


async def test_40_single_bit_flips_in_a_stored_channel_value_never_load(store: Damageable) -> None:
    graph = build(store.saver)
    await graph.ainvoke({"doc": DOC}, CONFIG)
    head = (await graph.aget_state(CONFIG)).config["configurable"]["checkpoint_id"]
    original = await store.read("doc")
    assert Serializer().loads(original) == DOC
    bits = random.Random(1234).sample(range(len(original) * 8), FLIPS)
    outcomes = {"refused": 0, "loaded the same": 0, "loaded a different value": 0}
    for bit in bits:
        damaged = bytearray(original)
        damaged[bit // 8] ^= 1 << (bit % 8)
        await store.write("doc", bytes(damaged))
        try:
            snapshot = await graph.aget_state(CONFIG)
        except CheckpointCorruptError as exc:
            outcomes["refused"] += 1
            assert (exc.thread_id, exc.checkpoint_id, exc.where) == (THREAD, head, "channel 'doc'")
            assert f"thread {THREAD!r}" in str(exc) and "channel 'doc'" in str(exc)
        else:
            same = snapshot.values.get("doc") == DOC
            outcomes["loaded the same" if same else "loaded a different value"] += 1
        finally:
            await store.write("doc", original)
    assert outcomes == {"refused": FLIPS, "loaded the same": 0, "loaded a different value": 0}
    assert (await graph.aget_state(CONFIG)).values["doc"] == DOC  # repaired: loads again


async def test_a_flipped_payload_bit_names_the_checksum(store: Damageable) -> None:
    graph = build(store.saver)
    await graph.ainvoke({"doc": DOC}, CONFIG)
    original = await store.read("doc")
    damaged = bytearray(original)
    damaged[HEADER_SIZE + 3] ^= 0x10
    await store.write("doc", bytes(damaged))
    with pytest.raises(CheckpointCorruptError, match="checksum mismatch"):
        await graph.aget_state(CONFIG)


# -- the frame itself (no store) -----------------------------------------------------------------


def test_every_single_bit_flip_of_a_value_is_refused() -> None:
    ser = Serializer()
    data = ser.dumps(DOC)
    for bit in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SerializationError):
            ser.loads(bytes(damaged))


def test_truncated_and_extended_values_are_refused() -> None:
    ser = Serializer()
    data = ser.dumps(DOC)
    for cut in (0, 1, HEADER_SIZE - 1, HEADER_SIZE, len(data) - 1):
        with pytest.raises(SerializationError):
            ser.loads(data[:cut])
    with pytest.raises(SerializationError, match="checksum mismatch"):
        ser.loads(data + b"\x00")


def test_unknown_frame_format_is_refused() -> None:
    data = bytearray(Serializer().dumps([1, 2]))
    data[1] = 0x02
    with pytest.raises(SerializationError, match="frame format 2; this hitl-async reads format 1"):
        Serializer().loads(bytes(data))


def test_values_from_before_checksums_load_only_when_allowed() -> None:
    legacy = unseal(Serializer().dumps(DOC))  # the bare msgpack hitl-async 0.1 stored
    with pytest.raises(SerializationError, match=r"no checksum frame.*allow_unchecked=True"):
        Serializer().loads(legacy)
    migrating = Serializer(allow_unchecked=True)
    assert migrating.loads(legacy) == DOC
    assert migrating.loads(seal(legacy)) == DOC
    assert migrating.dumps(DOC) == seal(legacy)  # every value written is framed either way


def test_frame_is_six_bytes_over_the_msgpack_payload() -> None:
    data = Serializer().dumps(DOC)
    assert data[:2] == b"\xc1\x01"
    assert len(data) == len(unseal(data)) + HEADER_SIZE == len(seal(unseal(data)))


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_checksum_covers_registered_and_deep_values() -> None:
    ser = Serializer()
    ser.register(Point)
    deep: Any = Point(1, 2)
    for _ in range(10):
        deep = (deep,)
    data = ser.dumps({"p": deep})
    assert ser.loads(data) == {"p": deep}
    damaged = bytearray(data)
    damaged[-1] ^= 0x01
    with pytest.raises(SerializationError, match="checksum mismatch"):
        ser.loads(bytes(damaged))
