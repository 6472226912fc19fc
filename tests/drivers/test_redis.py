"""Redis driver specifics: URL options, TTLs, hostile ids, concurrency, scripts, event loops.

The behaviour every driver shares is in tests/checkpoint/test_conformance.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import REDIS_URL, require_package, require_service

from hitl_async import (
    BlobRecord,
    CheckpointConflictError,
    CheckpointRecord,
    InMemorySaver,
    SerializationError,
    WriteRecord,
    connect,
)

require_package("hitl_async_redis", "drivers/redis")

from hitl_async_redis import RedisSaver, from_url  # noqa: E402

HOSTILE = [
    "",
    "plain",
    "with space",
    "quote'\"`",
    "100%",
    "glob*?[ab]\\",
    "a:b:c",
    "{brace}",
    "}{",
    "{",
    "line\nbreak\r\n",
    "nul\x00byte",
    "üñíçødé ✓ 🧵",
    "t6162",  # hex-looking
    "a:{b}:head",  # looks like a key
]


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def _record(
    thread_id: str,
    checkpoint_id: str,
    parent: str | None = None,
    *,
    ns: str = "",
    channels: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=ns,
        checkpoint_id=checkpoint_id,
        parent_id=parent,
        created_at=f"2024-01-01T00:00:{int(checkpoint_id[-2:]) % 60:02d}.000000+00:00",
        channel_versions=channels if channels is not None else {"a": "1", "b": "1"},
        header=b"header-" + checkpoint_id.encode(),
        metadata=metadata or {},
    )


def _blobs(channels: dict[str, str], tag: str = "") -> list[BlobRecord]:
    return [BlobRecord(ch, v, f"{tag}{ch}@{v}".encode() * 5) for ch, v in channels.items()]


@pytest.fixture
async def redis_saver() -> AsyncIterator[RedisSaver]:
    """A set-up saver on a fresh random prefix, destroyed afterwards."""
    require_service("redis", REDIS_URL)
    saver = RedisSaver(REDIS_URL, prefix=_prefix())
    await saver.setup()
    try:
        yield saver
    finally:
        await saver.destroy()
        await saver.aclose()


async def _keys(saver: RedisSaver, pattern: str = "*") -> list[bytes]:
    client = await saver.get_client()
    return [k async for k in client.scan_iter(match=pattern, count=1000)]


# -- URL parsing and options (no server needed) ---------------------------------------------


def test_from_url_options_from_query_and_keywords() -> None:
    saver = from_url(
        "redis://user:pw@example.invalid:6390/3?prefix=app&ttl=90&max_connections=7"
        "&pool_timeout=2.5&socket_timeout=1.5&health_check_interval=10",
        prefix="override",
    )
    assert isinstance(saver, RedisSaver)
    assert saver.prefix == "override"  # keywords win over the query
    assert saver.ttl == 90.0
    assert saver.max_connections == 7
    assert saver.pool_timeout == 2.5
    assert saver.socket_timeout == 1.5
    # the driver's options are stripped; redis-py's stay in the URL
    assert saver.url == "redis://user:pw@example.invalid:6390/3?health_check_interval=10"


def test_defaults_and_connect_entry_point() -> None:
    saver = connect("redis://example.invalid:1/0")  # construction does no I/O
    assert isinstance(saver, RedisSaver)
    assert (saver.prefix, saver.max_connections, saver.ttl) == ("hitl", 50, None)
    tls = connect("rediss://example.invalid:1/0", prefix="p", pool_timeout=None)
    assert isinstance(tls, RedisSaver) and tls.url.startswith("rediss://")
    assert from_url("redis://h/0?pool_timeout=none").pool_timeout is None


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://localhost:6379", {}),
        ("redis://localhost", {"ttl": 0}),
        ("redis://localhost", {"ttl": -5}),
        ("redis://localhost", {"max_connections": 0}),
        ("redis://localhost", {"prefix": ""}),
        ("redis://localhost?ttl=abc", {}),
    ],
)
def test_bad_options_rejected(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        from_url(url, **options)


@pytest.mark.anyio
async def test_pool_is_bounded_and_lazy() -> None:
    saver = RedisSaver("redis://example.invalid:1/0", max_connections=3, pool_timeout=4)
    assert saver._clients == {}  # nothing created before first use
    client = await saver.get_client()
    pool = client.connection_pool
    assert type(pool).__name__ == "BlockingConnectionPool"
    assert pool.max_connections == 3 and pool.timeout == 4
    assert await saver.get_client() is client  # one client per loop
    await saver.aclose()


# -- server tests -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_operation_is_one_round_trip(redis_saver: RedisSaver) -> None:
    client = await redis_saver.get_client()
    calls: list[tuple[Any, ...]] = []
    original = client.execute_command

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await original(*args, **kwargs)

    client.execute_command = counting  # type: ignore[method-assign]
    ch = {"a": "1", "b": "1"}
    writes = [WriteRecord("task", 0, "a", b"w")]
    await redis_saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)
    await redis_saver.put_writes("t", "", "c01", writes)
    assert (await redis_saver.load("t")) is not None
    assert len(await redis_saver.history("t", filter={"x": 1}, limit=3)) == 0
    with pytest.raises(CheckpointConflictError):
        await redis_saver.commit(_record("t", "c02"), [], expected_head=None)
    assert [c[0] for c in calls] == ["EVALSHA"] * 5


@pytest.mark.anyio
async def test_conflict_reports_actual_head_and_writes_nothing(redis_saver: RedisSaver) -> None:
    ch = {"a": "1"}
    await redis_saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)
    before = sorted(await _keys(redis_saver, f"{redis_saver.prefix}:*"))
    with pytest.raises(CheckpointConflictError) as info:
        await redis_saver.commit(
            _record("t", "c02", "c00", channels={"a": "2"}),
            _blobs({"a": "2"}),
            expected_head="c00",
            writes=[WriteRecord("x", 0, "a", b"w")],
        )
    assert (info.value.expected, info.value.actual) == ("c00", "c01")
    with pytest.raises(CheckpointConflictError) as info:
        await redis_saver.commit(_record("t", "c02"), [], expected_head="")
    assert (info.value.expected, info.value.actual) == ("", "c01")
    assert sorted(await _keys(redis_saver, f"{redis_saver.prefix}:*")) == before
    blobs = await (await redis_saver.get_client()).hlen(f"{redis_saver._base('t')}:blobs:")
    assert blobs == 1


@pytest.mark.anyio
async def test_reused_checkpoint_id_is_refused_in_one_call(redis_saver: RedisSaver) -> None:
    ch = {"a": "1"}
    await redis_saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)
    client = await redis_saver.get_client()
    base = redis_saver._base("t")
    snapshot = {
        k: await client.hgetall(k) for k in (f"{base}:head", f"{base}:cp:", f"{base}:blobs:")
    }
    calls: list[tuple[Any, ...]] = []
    original = client.execute_command

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await original(*args, **kwargs)

    client.execute_command = counting  # type: ignore[method-assign]
    with pytest.raises(CheckpointConflictError, match="'c01' already exists") as info:
        await redis_saver.commit(
            _record("t", "c01", "c01", channels={"a": "2"}),
            _blobs({"a": "2"}, tag="new"),
            expected_head="c01",
            writes=[WriteRecord("x", 0, "a", b"w")],
        )
    assert [c[0] for c in calls] == ["EVALSHA"]
    assert (info.value.expected, info.value.actual) == ("c01", "c01")
    del client.execute_command
    assert {k: await client.hgetall(k) for k in snapshot} == snapshot
    assert await _keys(redis_saver, f"{base}:w*") == []


@pytest.mark.anyio
async def test_missing_blob_is_a_serialization_error(redis_saver: RedisSaver) -> None:
    ch = {"a": "1", "b": "1"}
    await redis_saver.commit(
        _record("t", "c01", ns="sub", channels=ch), _blobs(ch), expected_head=None
    )
    client = await redis_saver.get_client()
    await client.hdel(f"{redis_saver._base('t')}:blobs:{b'sub'.hex()}", b"1:b1")
    message = r"thread 't' \(namespace 'sub'\), checkpoint 'c01': no blob for channel 'b'"
    with pytest.raises(SerializationError, match=message):
        await redis_saver.load("t", "sub")
    with pytest.raises(SerializationError, match=message):
        await redis_saver.history("t", "sub")


@pytest.mark.anyio
async def test_ttl_set_on_every_key_and_refreshed_on_commit() -> None:
    require_service("redis", REDIS_URL)
    saver = RedisSaver(REDIS_URL, prefix=_prefix(), ttl=1000)
    client = await saver.get_client()
    try:
        ch = {"a": "1"}
        await saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)
        await saver.put_writes("t", "", "c01", [WriteRecord("x", 0, "a", b"w")])
        await saver.put_writes("t", "sub", "c00", [WriteRecord("x", 0, "a", b"w")])
        sub = _record("t", "c02", ns="sub", channels=ch)
        await saver.commit(
            sub, _blobs(ch), expected_head=None, writes=[WriteRecord("y", 1, "a", b"v")]
        )
        keys = await _keys(saver, f"{saver.prefix}:{{*")
        # head, ns set, and cp/idx/blobs/w/wi for "" and "sub"
        assert len(keys) == 12
        for key in keys:
            assert 990 <= await client.ttl(key) <= 1000, key
        await client.expire(keys[0], 5)
        await saver.commit(_record("t", "c03", "c01", channels=ch), [], expected_head="c01")
        for key in keys:
            assert await client.ttl(key) >= 990, key
        score = await client.zscore(f"{saver.prefix}:threads", "t")
        assert score is not None and score != float("inf")
    finally:
        await saver.destroy()
        await saver.aclose()


@pytest.mark.anyio
async def test_expired_threads_vanish_from_list_threads() -> None:
    require_service("redis", REDIS_URL)
    saver = RedisSaver(REDIS_URL, prefix=_prefix(), ttl=0.3)
    forever = RedisSaver(REDIS_URL, prefix=saver.prefix)
    try:
        await saver.commit(
            _record("short", "c01"), _blobs({"a": "1", "b": "1"}), expected_head=None
        )
        await forever.commit(_record("long", "c01"), [], expected_head=None)
        assert sorted(await saver.list_threads()) == ["long", "short"]
        await asyncio.sleep(0.5)
        assert await saver.load("short") is None
        assert await saver.list_threads() == ["long"]
        assert await (await forever.get_client()).ttl(forever._base("long") + ":head") == -1
    finally:
        await saver.destroy()
        await saver.aclose()
        await forever.aclose()


@pytest.mark.anyio
async def test_hostile_ids_do_not_collide(redis_saver: RedisSaver) -> None:
    for i, thread_id in enumerate(HOSTILE):
        for j, ns in enumerate(HOSTILE[:4]):
            ch = {thread_id or "empty": f"v{i}:{j}", "b\n": "1"}
            rec = _record(thread_id, f"c{i:02d}", ns=ns, channels=ch)
            await redis_saver.commit(rec, _blobs(ch, f"{i}/{j}/"), expected_head=None)
            await redis_saver.put_writes(
                thread_id, ns, rec.checkpoint_id, [WriteRecord(thread_id, j, ns, ns.encode())]
            )
    for i, thread_id in enumerate(HOSTILE):
        for j, ns in enumerate(HOSTILE[:4]):
            loaded = await redis_saver.load(thread_id, ns)
            assert loaded is not None
            assert loaded.record.thread_id == thread_id and loaded.record.checkpoint_ns == ns
            assert loaded.record.checkpoint_id == f"c{i:02d}"
            assert (
                loaded.blobs[thread_id or "empty"]
                == f"{i}/{j}/{thread_id or 'empty'}@v{i}:{j}".encode() * 5
            )
            assert [(w.task_id, w.idx, w.data) for w in loaded.writes] == [
                (thread_id, j, ns.encode())
            ]
    assert sorted(await redis_saver.list_threads()) == sorted(HOSTILE)
    await redis_saver.delete_thread("{brace}")
    assert await redis_saver.load("{brace}") is None
    assert await redis_saver.load("}{") is not None
    assert len(await redis_saver.list_threads()) == len(HOSTILE) - 1


@pytest.mark.anyio
async def test_destroy_only_touches_its_prefix_even_with_glob_characters() -> None:
    require_service("redis", REDIS_URL)
    tag = uuid.uuid4().hex[:8]
    hostile = RedisSaver(REDIS_URL, prefix=f"g*[?]{tag}")
    bystanders = [
        RedisSaver(REDIS_URL, prefix=p) for p in (f"gX[?]{tag}", f"g*?{tag}", f"g*[?]{tag}x")
    ]
    try:
        for saver in [hostile, *bystanders]:
            for thread_id in HOSTILE:
                await saver.commit(
                    _record(thread_id, "c01"), _blobs({"a": "1", "b": "1"}), expected_head=None
                )
        await hostile.destroy()
        assert await hostile.list_threads() == []
        assert await _keys(hostile, "*" + tag + "*") != []
        for saver in bystanders:
            assert sorted(await saver.list_threads()) == sorted(HOSTILE)
            assert await saver.load("{") is not None
        client = await hostile.get_client()
        remaining = [k async for k in client.scan_iter(match=f"g\\*\\[\\?\\]{tag}:*")]
        assert remaining == []
    finally:
        for saver in [hostile, *bystanders]:
            await saver.destroy()
            await saver.aclose()


@pytest.mark.anyio
async def test_concurrent_commits_on_one_head_exactly_one_wins(redis_saver: RedisSaver) -> None:
    await redis_saver.commit(_record("t", "c00"), _blobs({"a": "1", "b": "1"}), expected_head=None)

    async def attempt(i: int) -> str:
        ch = {"a": f"{i + 2}", "b": "1"}
        rec = _record("t", f"c{i + 1:02d}", "c00", channels=ch)
        await redis_saver.commit(rec, _blobs(ch), expected_head="c00")
        return rec.checkpoint_id

    results = await asyncio.gather(*(attempt(i) for i in range(40)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, CheckpointConflictError)]
    assert len(winners) == 1 and len(losers) == 39
    assert {e.actual for e in losers} == {winners[0]}
    head = await redis_saver.load("t")
    assert head is not None and head.record.checkpoint_id == winners[0]
    assert [c.record.checkpoint_id for c in await redis_saver.history("t")] == [winners[0], "c00"]
    client = await redis_saver.get_client()
    assert await client.hlen(f"{redis_saver._base('t')}:blobs:") == 3  # a@1, b@1, the winner's a


@pytest.mark.anyio
async def test_thousand_concurrent_runs_share_ten_connections() -> None:
    require_service("redis", REDIS_URL)
    name = f"hitl-pool-{uuid.uuid4().hex[:8]}"
    saver = RedisSaver(REDIS_URL, prefix=_prefix(), max_connections=10, client_name=name)
    await saver.setup()
    peak = 0

    async def run(i: int) -> None:
        thread_id = f"run-{i}"
        ch = {"a": "1", "b": "1"}
        await saver.commit(_record(thread_id, "c01", channels=ch), _blobs(ch), expected_head=None)
        for step in range(2, 4):
            head = await saver.load(thread_id)
            assert head is not None
            rec = _record(thread_id, f"c{step:02d}", head.record.checkpoint_id, channels=ch)
            await saver.commit(rec, [], expected_head=head.record.checkpoint_id)

    async def watch() -> None:
        nonlocal peak
        while True:
            clients = await (await saver.get_client()).client_list()
            peak = max(peak, sum(1 for c in clients if c.get("name") == name))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        results = await asyncio.gather(*(run(i) for i in range(1000)), return_exceptions=True)
        assert [r for r in results if r is not None] == []
        assert len(await saver.list_threads()) == 1000
        assert 1 <= peak <= 10
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await saver.destroy()
        await saver.aclose()


@pytest.mark.anyio
async def test_scripts_reload_after_script_flush(redis_saver: RedisSaver) -> None:
    ch = {"a": "1", "b": "1"}
    await redis_saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)
    client = await redis_saver.get_client()
    await client.script_flush()
    await redis_saver.commit(_record("t", "c02", "c01", channels=ch), [], expected_head="c01")
    await client.script_flush()
    loaded = await redis_saver.load("t")
    assert loaded is not None and loaded.record.checkpoint_id == "c02"
    await client.script_flush()
    assert await redis_saver.prune("t", keep_last=1) == 1
    await client.script_flush()
    assert len(await redis_saver.history("t")) == 1


def test_one_saver_from_two_event_loops() -> None:
    require_service("redis", REDIS_URL)
    saver = RedisSaver(REDIS_URL, prefix=_prefix())
    ch = {"a": "1", "b": "1"}

    async def first() -> None:
        await saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)

    async def second() -> str | None:
        loaded = await saver.load("t")
        await saver.commit(_record("t", "c02", "c01", channels=ch), [], expected_head="c01")
        return loaded.record.checkpoint_id if loaded else None

    async def from_a_thread() -> list[str]:
        other = await asyncio.to_thread(asyncio.run, saver.history("t"))
        return [c.record.checkpoint_id for c in other]

    async def cleanup() -> None:
        await saver.destroy()
        await saver.aclose()

    try:
        asyncio.run(first())
        assert saver._clients == {}  # asyncio.run's shutdown closed that loop's pool
        assert asyncio.run(second()) == "c01"
        assert asyncio.run(from_a_thread()) == ["c02", "c01"]
    finally:
        asyncio.run(cleanup())


@pytest.mark.anyio
async def test_history_filter_matches_python_equality(redis_saver: RedisSaver) -> None:
    memory = InMemorySaver()
    metas: list[dict[str, Any]] = [
        {"n": 1, "tags": ["x", "y"], "d": {"a": 1, "b": [1.5, None]}},
        {"n": 1.0, "tags": ["y", "x"], "d": {"b": [1.5, None], "a": True}},
        {"n": True, "s": "1", "d": {"a": 2}},
        {"n": 2, "s": 1, "none": None},
        {"big": 2**70, "f": 0.1, "u": "ü"},
    ]
    parent = None
    for i, meta in enumerate(metas):
        rec = _record("t", f"c{i:02d}", parent, metadata=meta)
        for store in (memory, redis_saver):
            await store.commit(rec, _blobs({"a": "1", "b": "1"}), expected_head=parent)
        parent = rec.checkpoint_id
    filters: list[dict[Any, Any]] = [
        {"n": 1},
        {"n": 1.0, "d": {"a": 1, "b": [1.5, None]}},
        {"tags": ["x", "y"]},
        {"tags": ("x", "y")},
        {"s": "1"},
        {"s": 1},
        {"none": None},
        {"missing": None},
        {"big": 2**70},
        {"big": float(2**70)},
        {"f": 0.1, "u": "ü"},
        {"n": float("nan")},
        {1: 1},
        {"d": {"a": 1}},
    ]
    for flt in filters:
        for limit in (None, 1):
            want = await memory.history("t", filter=flt, limit=limit)
            got = await redis_saver.history("t", filter=flt, limit=limit)
            assert [c.record.checkpoint_id for c in got] == [
                c.record.checkpoint_id for c in want
            ], flt
            assert [dict(c.record.metadata) for c in got] == [dict(c.record.metadata) for c in want]


@pytest.mark.anyio
async def test_prune_removes_orphan_blobs_and_writes(redis_saver: RedisSaver) -> None:
    parent = None
    for i in range(1, 6):
        ch = {"a": str(i), "b": "1"}
        rec = _record("t", f"c{i:02d}", parent, channels=ch)
        await redis_saver.commit(
            rec, _blobs(ch), expected_head=parent, writes=[WriteRecord("k", 0, "a", b"x")]
        )
        parent = rec.checkpoint_id
    base = redis_saver._base("t")
    client = await redis_saver.get_client()
    assert await client.hlen(f"{base}:blobs:") == 6
    assert await redis_saver.prune("t", keep_last=2) == 3
    assert await client.hlen(f"{base}:blobs:") == 3  # a@4, a@5, b@1
    assert await client.hlen(f"{base}:w:") == 2
    assert await client.zcard(f"{base}:wi:") == 2
    assert [c.record.checkpoint_id for c in await redis_saver.history("t")] == ["c05", "c04"]
    await redis_saver.delete_thread("t")
    assert await _keys(redis_saver, f"{redis_saver.prefix}:{{*") == []
