"""Redis driver specifics: URL options, TTLs, hostile ids, concurrency, scripts, event loops.

The behaviour every driver shares is in tests/checkpoint/test_conformance.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from apps.services import REDIS_URL, require_package, require_service
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

from hitl_async import (
    BlobRecord,
    CheckpointConflictError,
    CheckpointRecord,
    InboxEntry,
    InMemorySaver,
    LeaseLostError,
    LoadedCheckpoint,
    RunRequest,
    SerializationError,
    StoreUnavailableError,
    ThreadBusyError,
    WriteRecord,
    connect,
)
from hitl_async.checkpoint.base import Commit
from hitl_async.checkpoint.capabilities import InboxQuery

require_package("hitl_async_redis", "drivers/redis")

from hitl_async_redis import RedisSaver, _scripts, from_url  # noqa: E402
from hitl_async_redis._pipeline import ScriptPipeline  # noqa: E402

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
THREAD_IDS = [h for h in HOSTILE if h and "\x00" not in h]
"""The hostile ids that are valid thread ids (empty and NUL are refused up front: ids.py)."""


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


@contextlib.contextmanager
def _round_trips(saver: RedisSaver) -> Iterator[list[tuple[Any, ...]]]:
    """The commands `saver` sends on the running loop while the block runs, as
    `(name, sha or first argument, ...)` with the name as str; one round trip carries one
    command unless calls were batched (see `_pipeline_of`)."""
    calls: list[tuple[Any, ...]] = []
    pipeline = saver._clients[asyncio.get_running_loop()].pipeline
    original = pipeline._packed

    def recording(command: Any) -> bytes:
        name, *rest = command
        calls.append((name.decode() if isinstance(name, bytes) else name, *rest))
        return original(command)

    pipeline._packed = recording  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        del pipeline._packed


async def _pipeline_of(saver: RedisSaver) -> ScriptPipeline:
    """The script pipeline of the running loop (created with the loop's client)."""
    await saver.get_client()
    return saver._clients[asyncio.get_running_loop()].pipeline


async def _dump(saver: RedisSaver, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every key under the saver's prefix (prefix stripped) with its type and full content."""
    client = await saver.get_client()
    out: dict[str, Any] = {}
    for key in await _keys(saver, f"{saver.prefix}:*"):
        name = key.decode()[len(saver.prefix) :]
        if name == ":store" or any(s in name for s in skip):  # (its random id is its own)
            continue
        kind = (await client.type(key)).decode()
        if kind == "hash":
            value: Any = await client.hgetall(key)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(await client.smembers(key))
        else:
            value = await client.dump(key)
        out[name] = (kind, value, await client.ttl(key) > 0)
    return out


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
    pipeline = await _pipeline_of(redis_saver)
    trips = pipeline.round_trips
    ch = {"a": "1", "b": "1"}
    writes = [WriteRecord("task", 0, "a", b"w")]
    with _round_trips(redis_saver) as calls:
        await redis_saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)
        await redis_saver.put_writes("t", "", "c01", writes)
        assert (await redis_saver.load("t")) is not None
        assert len(await redis_saver.history("t", filter={"x": 1}, limit=3)) == 0
        with pytest.raises(CheckpointConflictError):
            await redis_saver.commit(_record("t", "c02"), [], expected_head=None)
    assert [c[0] for c in calls] == ["EVALSHA"] * 5
    assert pipeline.round_trips - trips == 5


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
    with (
        _round_trips(redis_saver) as calls,
        pytest.raises(CheckpointConflictError, match="'c01' already exists") as info,
    ):
        await redis_saver.commit(
            _record("t", "c01", "c01", channels={"a": "2"}),
            _blobs({"a": "2"}, tag="new"),
            expected_head="c01",
            writes=[WriteRecord("x", 0, "a", b"w")],
        )
    assert [c[0] for c in calls] == ["EVALSHA"]
    assert (info.value.expected, info.value.actual) == ("c01", "c01")
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
    for i, thread_id in enumerate(THREAD_IDS):
        for j, ns in enumerate(HOSTILE[:4]):
            ch = {thread_id or "empty": f"v{i}:{j}", "b\n": "1"}
            rec = _record(thread_id, f"c{i:02d}", ns=ns, channels=ch)
            await redis_saver.commit(rec, _blobs(ch, f"{i}/{j}/"), expected_head=None)
            await redis_saver.put_writes(
                thread_id, ns, rec.checkpoint_id, [WriteRecord(thread_id, j, ns, ns.encode())]
            )
    for i, thread_id in enumerate(THREAD_IDS):
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
    assert sorted(await redis_saver.list_threads()) == sorted(THREAD_IDS)
    await redis_saver.delete_thread("{brace}")
    assert await redis_saver.load("{brace}") is None
    assert await redis_saver.load("}{") is not None
    assert len(await redis_saver.list_threads()) == len(THREAD_IDS) - 1


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
            for thread_id in THREAD_IDS:
                await saver.commit(
                    _record(thread_id, "c01"), _blobs({"a": "1", "b": "1"}), expected_head=None
                )
        await hostile.destroy()
        assert await hostile.list_threads() == []
        assert await _keys(hostile, "*" + tag + "*") != []
        for saver in bystanders:
            assert sorted(await saver.list_threads()) == sorted(THREAD_IDS)
            assert await saver.load("{") is not None
        client = await hostile.get_client()
        remaining = [k async for k in client.scan_iter(match=f"g\\*\\[\\?\\]{tag}:*")]
        assert remaining == [f"g*[?]{tag}:store".encode()]  # the id a fresh store got on reuse
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


def _drop_while_idle(*, run_again: bool) -> tuple[list[str], list[str]]:
    """Use a saver in a loop of a thread of its own (that loop its current one), drop it
    unclosed while the loop is open but not running, then run the loop to its end or close it
    at once; warnings are errors meanwhile (but ResourceWarnings, recorded). Returns the
    warnings recorded and the errors raised where nobody could catch them (finalizers)."""
    recorded: list[str] = []
    unraisable: list[str] = []

    def scenario() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            saver = RedisSaver(REDIS_URL, prefix=_prefix())
            assert loop.run_until_complete(saver.list_threads()) == []
            del saver
            gc.collect()  # the finalizer runs here, the loop idle
            if run_again:
                loop.run_until_complete(asyncio.sleep(0))  # what the finalizer scheduled
                loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop)))
                loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            asyncio.set_event_loop(None)
        gc.collect()

    gc.collect()  # what earlier tests left to the collector warns now, not in the window below
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(f"{u.exc_type.__name__}: {u.exc_value}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("error")
            warnings.simplefilter("always", ResourceWarning)
            thread = threading.Thread(target=scenario)
            thread.start()
            thread.join()
            gc.collect()
    finally:
        sys.unraisablehook = hook
    recorded = [f"{w.category.__name__}: {w.message}" for w in caught]
    return recorded, unraisable


def test_a_saver_dropped_while_its_loop_idles_closes_its_pool_when_the_loop_runs() -> None:
    require_service("redis", REDIS_URL)
    recorded, unraisable = _drop_while_idle(run_again=True)
    assert unraisable == []
    assert len(recorded) == 1, recorded  # nothing left unclosed but what the warning names
    assert "garbage-collected without aclose()" in recorded[0]


def test_a_saver_dropped_while_its_loop_idles_leaves_no_coroutine_if_the_loop_closes() -> None:
    """The finalizer used to drive the pool's close outside the loop, which left a disconnect
    coroutine never awaited (a RuntimeWarning) once the loop closed without running again."""
    require_service("redis", REDIS_URL)
    recorded, unraisable = _drop_while_idle(run_again=False)
    assert unraisable == []
    assert not [w for w in recorded if not w.startswith("ResourceWarning")], recorded
    assert any("garbage-collected without aclose()" in w for w in recorded)


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


# -- coordination: leases, the inbox index, the run queue ------------------------------------


def _entry(thread_id: str, iid: str, created: int, **kw: Any) -> InboxEntry:
    return InboxEntry(
        thread_id=thread_id,
        interrupt_id=iid,
        checkpoint_ns="",
        node=kw.pop("node", "ask"),
        value=b"v-" + iid.encode(),
        created_at=f"2026-01-01T00:00:{created:02d}.000000+00:00",
        **kw,
    )


def _request(rid: str, thread_id: str, created: int, queue: str = "q") -> RunRequest:
    return RunRequest(
        id=rid,
        queue=queue,
        thread_id=thread_id,
        payload=b"p-" + rid.encode(),
        created_at=f"2026-01-01T00:{created // 60:02d}:{created % 60:02d}.000000+00:00",
    )


@pytest.mark.anyio
async def test_list_inbox_reads_only_the_inbox_index(redis_saver: RedisSaver) -> None:
    """With 1000+ checkpoints of other threads stored, MONITOR shows list_inbox (every filter)
    running one EVALSHA that touches only the inbox keys, a bounded number of times."""

    async def chain(thread_id: str, n: int) -> None:
        parent = None
        for i in range(n):
            rec = _record(thread_id, f"c{i:04d}", parent, channels={"a": str(i)})
            await redis_saver.commit(rec, _blobs({"a": str(i)}), expected_head=parent)
            parent = rec.checkpoint_id

    await asyncio.gather(*(chain(f"busy-{i}", 110) for i in range(10)))
    for i, thread_id in enumerate(["{a}", "b b", "c*"]):
        rec = _record(thread_id, "c01")
        inbox = [
            _entry(thread_id, f"i{i}-1", i, node="review" if i == 1 else "ask"),
            _entry(thread_id, f"i{i}-2", 10 + i, deadline=100.0 + i, graph="g"),
        ]
        await redis_saver.commit(rec, _blobs({"a": "1", "b": "1"}), expected_head=None, inbox=inbox)
    client = await redis_saver.get_client()
    prefix = redis_saver.prefix
    base = redis_saver._base("{a}")
    allowed = {
        f"{prefix}:store",  # the store identity every script checks first
        f"{prefix}:inbox",
        f"{prefix}:inbox:data",
        f"{prefix}:inbox:due",
        *(f"{redis_saver._base(t)}:inbox" for t in ["{a}", "b b", "c*"]),
    }
    start, end = f"start-{uuid.uuid4().hex}", f"end-{uuid.uuid4().hex}"
    seen: list[dict[str, Any]] = []

    async def watch(ready: asyncio.Event) -> None:
        async with monitor_client.monitor() as monitor:
            ready.set()
            inside = False
            while True:
                command = await monitor.next_command()
                text = command["command"]
                if text == f"ECHO {start}":
                    inside = True
                elif text == f"ECHO {end}":
                    return
                elif inside and prefix in text:
                    seen.append(command)

    monitor_client = redis_saver._dedicated_client()
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(ready))
    await ready.wait()
    await client.echo(start)
    results = {
        "all": await redis_saver.list_inbox(),
        "page": await redis_saver.list_inbox(
            InboxQuery(after=("2026-01-01T00:00:01.000000+00:00", "b b", "i1-1"))
        ),
        "thread": await redis_saver.list_inbox(InboxQuery(thread_id="{a}")),
        "node": await redis_saver.list_inbox(InboxQuery(node="review")),
        "graph": await redis_saver.list_inbox(InboxQuery(graph="g", limit=2)),
        "due": await redis_saver.list_inbox(InboxQuery(due_before=101.5)),
        "thread_due": await redis_saver.list_inbox(InboxQuery(thread_id="c*", due_before=1000.0)),
    }
    await client.echo(end)
    await asyncio.wait_for(watcher, 10)
    await monitor_client.aclose()

    ids = {name: [e.interrupt_id for e in got] for name, got in results.items()}
    assert ids == {
        "all": ["i0-1", "i1-1", "i2-1", "i0-2", "i1-2", "i2-2"],
        "page": ["i2-1", "i0-2", "i1-2", "i2-2"],
        "thread": ["i0-1", "i0-2"],
        "node": ["i1-1"],
        "graph": ["i0-2", "i1-2"],
        "due": ["i0-2", "i1-2"],
        "thread_due": ["i2-2"],
    }
    assert results["all"][3] == _entry("{a}", "i0-2", 10, deadline=100.0, graph="g")
    calls = [c for c in seen if c["client_type"] != "lua"]
    assert [c["command"].split(" ")[:2] for c in calls] == [
        ["EVALSHA", _scripts.LIST_INBOX.sha]
    ] * len(results)
    inner = [c["command"].split(" ") for c in seen if c["client_type"] == "lua"]
    assert inner and {words[1] for words in inner} <= allowed, inner
    assert len(inner) < 60 + len(results)  # O(entries), not O(checkpoints); a GET of the id each
    assert f"{base}:cp:" not in str(seen)


@pytest.mark.anyio
async def test_fenced_commit_and_put_writes_are_one_call_and_write_nothing(
    redis_saver: RedisSaver,
) -> None:
    old = await redis_saver.acquire_lease("t", "w1", 30)
    ch = {"a": "1"}
    await redis_saver.commit(
        _record("t", "c01", channels=ch), _blobs(ch), expected_head=None, lease=old,
        inbox=[_entry("t", "i1", 1)],
    )  # fmt: skip
    await redis_saver.release_lease(old)
    new = await redis_saver.acquire_lease("t", "w2", 30)
    assert new.token == old.token + 1
    client = await redis_saver.get_client()
    before = {k: await client.type(k) for k in await _keys(redis_saver, f"{redis_saver.prefix}:*")}
    snapshot = {k: await client.hgetall(k) for k, t in before.items() if t == b"hash"}
    with _round_trips(redis_saver) as calls:
        with pytest.raises(LeaseLostError) as info:
            await redis_saver.commit(
                _record("t", "c02", "c01", channels={"a": "2"}),
                _blobs({"a": "2"}),
                expected_head="c01",
                writes=[WriteRecord("x", 0, "a", b"w")],
                lease=old,
                inbox=[],
            )
        assert (info.value.token, info.value.current) == (old.token, new.token)
        with pytest.raises(LeaseLostError):
            await redis_saver.put_writes(
                "t", "", "c01", [WriteRecord("x", 0, "a", b"w")], lease=old
            )
    assert [c[0] for c in calls] == ["EVALSHA", "EVALSHA"]
    after = {k: await client.type(k) for k in await _keys(redis_saver, f"{redis_saver.prefix}:*")}
    assert after == before
    assert {k: await client.hgetall(k) for k in snapshot} == snapshot
    assert [e.interrupt_id for e in await redis_saver.list_inbox()] == ["i1"]
    # the token survives delete_thread: a stale holder stays fenced off
    await redis_saver.delete_thread("t")
    assert await redis_saver.list_inbox() == []
    await redis_saver.release_lease(new)
    third = await redis_saver.acquire_lease("t", "w3", 30)
    assert third.token == new.token + 1
    with pytest.raises(LeaseLostError):
        await redis_saver.commit(_record("t", "c01"), [], expected_head=None, lease=old)


@pytest.mark.anyio
async def test_coordination_with_hostile_ids(redis_saver: RedisSaver) -> None:
    for i, thread_id in enumerate(THREAD_IDS):
        lease = await redis_saver.acquire_lease(thread_id, thread_id, 30, graph=thread_id)
        await redis_saver.commit(
            _record(thread_id, "c01"), _blobs({"a": "1", "b": "1"}), expected_head=None,
            lease=lease, inbox=[_entry(thread_id, thread_id, i, node=thread_id, graph=thread_id)],
        )  # fmt: skip
        await redis_saver.renew_lease(lease, 0.001)  # expires now: what a dead run leaves
        await redis_saver.enqueue(_request(thread_id, thread_id, i, queue=thread_id))
    await asyncio.sleep(0.05)
    expired = await redis_saver.expired_leases(limit=1000)
    assert sorted((e.thread_id, e.owner, e.graph) for e in expired) == sorted(
        (t, t, t) for t in THREAD_IDS
    )
    for i, thread_id in enumerate(THREAD_IDS):
        assert [e.thread_id for e in await redis_saver.expired_leases(graph=thread_id)] == [
            thread_id
        ]
        got = await redis_saver.list_inbox(InboxQuery(thread_id=thread_id))
        assert [(e.interrupt_id, e.node, e.graph) for e in got] == [(thread_id,) * 3]
        assert await redis_saver.list_inbox(InboxQuery(node=thread_id)) == got
        claimed = await redis_saver.claim_request(thread_id, "w", 30)
        assert claimed is not None and (claimed.id, claimed.thread_id) == (thread_id, thread_id)
        assert claimed.created_at == _request(thread_id, thread_id, i).created_at
    listed = await redis_saver.list_inbox(InboxQuery(limit=1000))
    assert [e.thread_id for e in listed] == THREAD_IDS  # created_at order (i)


@pytest.mark.anyio
async def test_concurrent_claimers_never_share_a_request(redis_saver: RedisSaver) -> None:
    """20 claimers over 50 requests of distinct threads: each request is claimed exactly once."""
    for i in range(50):
        await redis_saver.enqueue(_request(f"r{i:02d}", f"t{i:02d}", i))
    claims: list[str] = []

    async def claimer(n: int) -> None:
        while (got := await redis_saver.claim_request("q", f"w{n}", 60)) is not None:
            claims.append(got.id)

    await asyncio.gather(*(claimer(n) for n in range(20)))
    assert sorted(claims) == [f"r{i:02d}" for i in range(50)]


@pytest.mark.anyio
async def test_concurrent_workers_run_each_request_once_one_per_thread(
    redis_saver: RedisSaver,
) -> None:
    """Requests sharing threads: every one runs once, never two of a thread at the same time."""
    for i in range(40):
        await redis_saver.enqueue(_request(f"r{i:02d}", f"t{i % 5}", i))
    done: list[str] = []
    running: set[str] = set()

    async def worker(n: int) -> None:
        idle = 0
        while idle < 3:
            got = await redis_saver.claim_request("q", f"w{n}", 60)
            if got is None:
                idle += 1
                await redis_saver.wait_for_work("q", 0.05)
                continue
            idle = 0
            assert got.thread_id not in running
            running.add(got.thread_id)
            await asyncio.sleep(0)
            running.discard(got.thread_id)
            done.append(got.id)
            assert await redis_saver.finish_request(got.id, f"w{n}", "done") is True

    await asyncio.gather(*(worker(n) for n in range(10)))
    assert sorted(done) == [f"r{i:02d}" for i in range(40)]
    per_thread = [int(r[1:]) for r in done if int(r[1:]) % 5 == 0]
    assert per_thread == sorted(per_thread)  # oldest first within a thread


@pytest.mark.anyio
async def test_waits_wake_on_notifications_not_polling() -> None:
    """A commit (or enqueue) through another saver wakes waiters at once; the dedicated
    connections are closed by aclose()."""
    require_service("redis", REDIS_URL)
    name = f"hitl-wait-{uuid.uuid4().hex[:8]}"
    waiter = RedisSaver(REDIS_URL, prefix=_prefix(), client_name=name)
    writer = RedisSaver(REDIS_URL, prefix=waiter.prefix)
    loop = asyncio.get_running_loop()
    try:

        async def later(action: Any) -> None:
            await asyncio.sleep(0.2)
            await action

        started = loop.time()
        await asyncio.gather(
            waiter.wait_for_change("t", 10),
            later(writer.commit(_record("t", "c01"), [], expected_head=None)),
        )
        await asyncio.gather(
            waiter.wait_for_work("other queue", 10),
            later(writer.enqueue(_request("r1", "t", 1, queue="other queue"))),
        )
        await asyncio.gather(
            waiter.wait_for_change("t", 10),
            later(writer.put_writes("t", "", "c01", [WriteRecord("x", 0, "a", b"w")])),
        )
        assert loop.time() - started < 2
        # a running claim that expires wakes a worker waiting on that queue, without an enqueue
        assert await writer.claim_request("other queue", "dead", 0.3) is not None
        started = loop.time()
        await waiter.wait_for_work("other queue", 10)
        assert 0.1 < loop.time() - started < 2
        client = await writer.get_client()
        assert any(c.get("name") == name for c in await client.client_list())
        await waiter.aclose()
        for _ in range(100):  # the server notices closed sockets asynchronously
            left = [c["cmd"] for c in await client.client_list() if c.get("name") == name]
            if not left:
                break
            await asyncio.sleep(0.02)
        assert left == []
    finally:
        await writer.destroy()
        await writer.aclose()
        await waiter.aclose()


@pytest.mark.anyio
async def test_finishing_a_request_wakes_its_threads_other_queue(redis_saver: RedisSaver) -> None:
    await redis_saver.enqueue(_request("r1", "t", 1, queue="a"))
    await redis_saver.enqueue(_request("r2", "t", 2, queue="b"))
    assert (await redis_saver.claim_request("a", "w", 60)) is not None
    assert await redis_saver.claim_request("b", "w", 60) is None  # its thread is busy
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def finish() -> None:
        await asyncio.sleep(0.2)
        assert await redis_saver.finish_request("r1", "w", "done", result=b"ok")

    await asyncio.gather(redis_saver.wait_for_work("b", 10), finish())
    assert loop.time() - started < 2
    claimed = await redis_saver.claim_request("b", "w", 60)
    assert claimed is not None and claimed.id == "r2"
    with pytest.raises(ValueError, match="already exists"):
        await redis_saver.enqueue(_request("r2", "t", 3))


@pytest.mark.anyio
async def test_inbox_of_expired_threads_leaves_the_index() -> None:
    require_service("redis", REDIS_URL)
    saver = RedisSaver(REDIS_URL, prefix=_prefix(), ttl=0.3)
    forever = RedisSaver(REDIS_URL, prefix=saver.prefix)
    try:
        await saver.commit(
            _record("short", "c01"), [], expected_head=None, inbox=[_entry("short", "i1", 1)]
        )
        await forever.commit(
            _record("long", "c01"), [], expected_head=None, inbox=[_entry("long", "i2", 2)]
        )
        assert [e.interrupt_id for e in await saver.list_inbox()] == ["i1", "i2"]
        await asyncio.sleep(0.5)
        assert [e.interrupt_id for e in await saver.list_inbox()] == ["i2"]
        client = await saver.get_client()
        assert await client.zcard(f"{saver.prefix}:inbox") == 1
        assert await client.hlen(f"{saver.prefix}:inbox:data") == 1
    finally:
        await saver.destroy()
        await saver.aclose()
        await forever.aclose()


# -- one round trip per run start and per batch: acquire_and_load, commit_many ----------------


def _chain(thread_id: str, n: int, start: int = 1, head: str | None = None) -> list[Commit]:
    """`n` chained commits c<start>.. on `head`: changed blobs only, some writes, some inboxes."""
    commits: list[Commit] = []
    for i in range(start, start + n):
        cid = f"c{i:02d}"
        channels = {"a": str(i), "b": "1" if i < 6 else "2"}
        changed = {"a": str(i)} | ({"b": channels["b"]} if i in (start, 6) else {})
        writes = [WriteRecord(f"task{i}", j, "a", f"w{i}.{j}".encode()) for j in range(i % 3)]
        inbox = [_entry(thread_id, f"i{i}", i)] if i % 4 == 0 else None
        record = _record(thread_id, cid, head, channels=channels, metadata={"step": i})
        commits.append(Commit(record, _blobs(changed), head, writes, inbox))
        head = cid
    return commits


@pytest.mark.anyio
@pytest.mark.parametrize("ttl", [None, 1000])
async def test_commit_many_is_one_round_trip_and_stores_what_commits_do(ttl: int | None) -> None:
    require_service("redis", REDIS_URL)
    batched = RedisSaver(REDIS_URL, prefix=_prefix(), ttl=ttl)
    single = RedisSaver(REDIS_URL, prefix=_prefix(), ttl=ttl)
    try:
        await batched.setup()
        commits = _chain("t", 12)
        first, second = [await s.acquire_lease("t", "w", 30) for s in (batched, single)]
        with _round_trips(batched) as calls:
            await batched.commit_many(commits, lease=first)
        assert [c[:2] for c in calls] == [("EVALSHA", _scripts.COMMIT.sha)]
        for c in commits:
            await single.commit(
                c.record, c.blobs, expected_head=c.expected_head, writes=c.writes,
                lease=second, inbox=c.inbox,
            )  # fmt: skip
        # every key alike, TTLs included (lease hashes and the threads index aside: they hold
        # expiry times)
        skip = (":lease", ":threads")
        assert await _dump(batched, skip=skip) == await _dump(single, skip=skip)
        assert await batched.list_threads() == await single.list_threads() == ["t"]
        history = await batched.history("t")
        assert history == await single.history("t")
        assert [h.record.checkpoint_id for h in history] == [f"c{i:02d}" for i in range(12, 0, -1)]
        assert sum(len(h.writes) for h in history) == 12
        assert [e.interrupt_id for e in await batched.list_inbox()] == ["i12"]
    finally:
        for saver in (batched, single):
            await saver.destroy()
            await saver.aclose()


@pytest.mark.anyio
async def test_commit_many_refuses_a_broken_chain_and_writes_nothing(
    redis_saver: RedisSaver,
) -> None:
    await redis_saver.commit(_record("t", "c01"), _blobs({"a": "1", "b": "1"}), expected_head=None)
    lease = await redis_saver.acquire_lease("t", "w", 30)
    chain = _chain("t", 5, start=2, head="c01")  # c02 .. c06
    before = await _dump(redis_saver)
    await redis_saver.get_client()  # (the loop state `_round_trips` records on)
    bad_middle = [*chain[:2], replace(chain[2], expected_head="c99"), *chain[3:]]
    with _round_trips(redis_saver) as calls, pytest.raises(CheckpointConflictError) as info:
        await redis_saver.commit_many(bad_middle, lease=lease, release=True)
    assert len(calls) == 1
    assert (info.value.expected, info.value.actual) == ("c99", "c03")
    with pytest.raises(CheckpointConflictError) as info:
        await redis_saver.commit_many(_chain("t", 3, start=2, head="c00"), lease=lease)
    assert (info.value.expected, info.value.actual) == ("c00", "c01")
    for reused in ("c01", "c02"):  # stored before, or earlier in the chain
        broken = [*chain[:2], Commit(_record("t", reused, "c03"), _blobs({"a": "9"}), "c03")]
        with pytest.raises(CheckpointConflictError, match=f"'{reused}' already exists"):
            await redis_saver.commit_many(broken, lease=lease, release=True)
    with pytest.raises(ValueError, match="one thread"):
        await redis_saver.commit_many([chain[0], replace(chain[1], record=_record("u", "c03"))])
    assert await _dump(redis_saver) == before  # nothing stored, the lease not released
    with pytest.raises(ThreadBusyError):
        await redis_saver.acquire_lease("t", "other", 30)
    await redis_saver.commit_many(chain, lease=lease)
    head = await redis_saver.load("t")
    assert head is not None and head.record.checkpoint_id == "c06"


@pytest.mark.anyio
async def test_commit_many_with_a_lost_lease_writes_nothing(redis_saver: RedisSaver) -> None:
    old = await redis_saver.acquire_lease("t", "w1", 30)
    await redis_saver.commit_many(_chain("t", 1), lease=old, release=True)
    new = await redis_saver.acquire_lease("t", "w2", 30)
    before = await _dump(redis_saver)
    with pytest.raises(LeaseLostError) as info:
        await redis_saver.commit_many(_chain("t", 4, start=2, head="c01"), lease=old, release=True)
    assert (info.value.token, info.value.current) == (old.token, new.token)
    assert await _dump(redis_saver) == before  # the holder's lease stays, nothing stored
    with pytest.raises(ThreadBusyError):
        await redis_saver.acquire_lease("t", "w3", 30)
    await redis_saver.renew_lease(new, 0.001)  # expires now
    await asyncio.sleep(0.05)
    taker = await redis_saver.acquire_lease("t", "w3", 30)  # expired and taken over
    with pytest.raises(LeaseLostError):
        await redis_saver.commit_many(_chain("t", 2, start=2, head="c01"), lease=new)
    assert await _dump(redis_saver, skip=(":lease",)) == {
        k: v for k, v in before.items() if ":lease" not in k
    }
    await redis_saver.release_lease(taker)


@pytest.mark.anyio
async def test_commit_many_with_release_frees_the_thread_in_the_same_call(
    redis_saver: RedisSaver,
) -> None:
    lease = await redis_saver.acquire_lease("t", "w1", 30, graph="g")
    with pytest.raises(ThreadBusyError):
        await redis_saver.acquire_lease("t", "w2", 30)
    with _round_trips(redis_saver) as calls:
        await redis_saver.commit_many(_chain("t", 3), lease=lease, release=True)
    assert len(calls) == 1
    assert await redis_saver.expired_leases() == []  # not left in the leases zset either
    after = await redis_saver.acquire_lease("t", "w2", 30)
    assert after.token == lease.token + 1
    head = await redis_saver.load("t")
    assert head is not None and head.record.checkpoint_id == "c03"
    with pytest.raises(LeaseLostError):  # the released lease is fenced off
        await redis_saver.commit_many(_chain("t", 1, start=4, head="c03"), lease=lease)
    await redis_saver.commit_many([], lease=after, release=True)  # an empty chain releases too
    assert (await redis_saver.acquire_lease("t", "w3", 30)).token == after.token + 1


@pytest.mark.anyio
async def test_acquire_and_load_is_one_round_trip(redis_saver: RedisSaver) -> None:
    await redis_saver.get_client()
    with _round_trips(redis_saver) as calls:
        lease, loaded = await redis_saver.acquire_and_load("t", "w1", 30, graph="g")
    assert [c[:2] for c in calls] == [("EVALSHA", _scripts.ACQUIRE_AND_LOAD.sha)]
    assert loaded is None
    assert (lease.thread_id, lease.owner, lease.graph, lease.token) == ("t", "w1", "g", 1)
    await redis_saver.commit_many(_chain("t", 3), lease=lease)
    sub = _record("t", "s01", ns="sub", channels={"x": "1"})
    await redis_saver.commit(
        sub, _blobs({"x": "1"}), expected_head=None, lease=lease,
        writes=[WriteRecord("k", 0, "x", b"v")],
    )  # fmt: skip
    with _round_trips(redis_saver) as calls, pytest.raises(ThreadBusyError) as info:
        await redis_saver.acquire_and_load("t", "w2", 30)
    assert len(calls) == 1
    assert (info.value.holder, info.value.expires_at) == ("w1", lease.expires_at)
    await redis_saver.release_lease(lease)
    token = lease.token
    cases = [("", None, "c03"), ("", "c02", "c02"), ("sub", None, "s01"), ("", "c99", None)]
    for ns, cid, want in cases:
        with _round_trips(redis_saver) as calls:
            lease, loaded = await redis_saver.acquire_and_load(
                "t", "w2", 30, checkpoint_ns=ns, checkpoint_id=cid
            )
        assert len(calls) == 1
        assert lease.token == token + 1
        token = lease.token
        assert loaded == await redis_saver.load("t", ns, cid)
        assert (loaded.record.checkpoint_id if loaded else None) == want
        await redis_saver.release_lease(lease)
    assert loaded is None
    for thread_id in THREAD_IDS:
        lease, loaded = await redis_saver.acquire_and_load(thread_id, thread_id, 30)
        assert loaded is None
        await redis_saver.commit_many(_chain(thread_id, 2), lease=lease, release=True)
        lease, loaded = await redis_saver.acquire_and_load(thread_id, "again", 30)
        assert loaded is not None and loaded.record.checkpoint_id == "c02"
        assert loaded.record.thread_id == thread_id


# -- group commit: concurrent calls share a round trip ------------------------------------------


def test_group_commit_options() -> None:
    saver = from_url("redis://h/0?group_commit=false&max_batch=8&batches_in_flight=3")
    assert (saver.group_commit, saver.max_batch, saver.batches_in_flight) == (False, 8, 3)
    default = from_url("redis://h/0")
    assert (default.group_commit, default.max_batch, default.batches_in_flight) == (True, 32, 4)
    assert from_url("redis://h/0?group_commit=off", group_commit=True).group_commit is True
    for bad in ("group_commit=maybe", "max_batch=0", "batches_in_flight=0"):
        with pytest.raises(ValueError):
            from_url(f"redis://h/0?{bad}")


@contextlib.contextmanager
def _busy(saver: RedisSaver) -> Iterator[None]:
    """As if another call of the running loop were under way: every call joins the batcher
    (a lone call goes out at once, without it)."""
    state = saver._clients[asyncio.get_running_loop()]
    state.active += 1
    try:
        yield
    finally:
        state.active -= 1


async def _thread_run(saver: RedisSaver, thread_id: str) -> tuple[Any, ...]:
    """A run that starts a thread, then one that resumes it: every hot-path call once."""
    lease, loaded = await saver.acquire_and_load(thread_id, "w", 30, graph="g")
    assert loaded is None
    await saver.commit_many(_chain(thread_id, 3), lease=lease, release=True)
    lease, loaded = await saver.acquire_and_load(thread_id, "w", 30)
    writes = [WriteRecord("k", 0, "a", b"v")]
    await saver.put_writes(thread_id, "", "c03", writes, lease=lease)
    ch = {"a": "9", "b": "1"}
    rec = _record(thread_id, "c04", "c03", channels=ch)
    await saver.commit(rec, _blobs({"a": "9"}), expected_head="c03", lease=lease)
    await saver.release_lease(lease)
    return lease.token, loaded, await saver.load(thread_id)


@pytest.mark.anyio
async def test_concurrent_calls_share_round_trips_and_store_what_one_by_one_does() -> None:
    """Runs of many threads at once: their calls go out in far fewer round trips than calls,
    and every caller gets, and the store holds, exactly what the same calls one by one give."""
    require_service("redis", REDIS_URL)
    batched = RedisSaver(REDIS_URL, prefix=_prefix(), max_batch=16, batches_in_flight=2)
    single = RedisSaver(REDIS_URL, prefix=_prefix(), group_commit=False)
    threads = [f"thread-{i}" for i in range(60)] + THREAD_IDS
    try:
        await batched.setup()
        await single.setup()
        together = await asyncio.gather(*(_thread_run(batched, t) for t in threads))
        one_by_one = [await _thread_run(single, t) for t in threads]
        assert together == one_by_one
        batcher = batched.batcher()
        assert batcher is not None and single.batcher() is None
        pipeline = await _pipeline_of(batched)
        assert pipeline.calls == 7 * len(threads) + 1  # + learning the store's id at setup
        assert batcher.requests >= pipeline.calls - 10  # (lone calls go out without it)
        assert batcher.batches <= batcher.requests / 4
        assert pipeline.round_trips == batcher.batches + pipeline.calls - batcher.requests
        alone = await _pipeline_of(single)
        assert alone.calls == alone.round_trips == 7 * len(threads) + 1
        skip = (":lease",)  # expiry times
        assert await _dump(batched, skip=skip) == await _dump(single, skip=skip)
    finally:
        for saver in (batched, single):
            await saver.destroy()
            await saver.aclose()


@pytest.mark.anyio
async def test_a_lone_call_goes_out_at_once_without_the_batcher(redis_saver: RedisSaver) -> None:
    """With no other call under way there is nothing to wait for: a call is its own round
    trip, sent from the caller's task (no batcher task, no added latency)."""
    batcher = redis_saver.batcher()
    pipeline = await _pipeline_of(redis_saver)
    assert batcher is not None
    before = (batcher.batches, batcher.requests, pipeline.round_trips)
    lease, loaded = await redis_saver.acquire_and_load("t", "w", 30)
    await redis_saver.commit_many(_chain("t", 2), lease=lease, release=True)
    assert loaded is None and await redis_saver.load("t") is not None
    assert (batcher.batches, batcher.requests) == before[:2]
    assert pipeline.round_trips == before[2] + 3


@pytest.mark.anyio
async def test_one_batch_gives_each_caller_its_own_outcome(redis_saver: RedisSaver) -> None:
    """A conflict, a lost lease, a busy thread and a Lua error in one pipeline reach their own
    callers only; the other calls of the batch succeed."""
    ch = {"a": "1", "b": "1"}
    await redis_saver.commit(_record("head", "c01", channels=ch), _blobs(ch), expected_head=None)
    stale = await redis_saver.acquire_lease("lost", "w1", 30)
    await redis_saver.release_lease(stale)
    holder = await redis_saver.acquire_lease("lost", "w2", 30)
    busy = await redis_saver.acquire_lease("busy", "w1", 30)
    client = await redis_saver.get_client()
    await client.set(f"{redis_saver._base('broken')}:head", "not a hash")
    batcher = redis_saver.batcher()
    assert batcher is not None
    before = (batcher.batches, batcher.requests)
    with _busy(redis_saver):
        results = await asyncio.gather(
            redis_saver.commit_many(_chain("ok", 2)),
            redis_saver.commit(_record("head", "c02", "c00"), [], expected_head="c00"),
            redis_saver.commit_many(_chain("lost", 1), lease=stale, release=True),
            redis_saver.acquire_and_load("busy", "w2", 30),
            redis_saver.commit(_record("broken", "c01"), [], expected_head=None),
            redis_saver.load("head"),
            redis_saver.acquire_and_load("free", "w2", 30),
            return_exceptions=True,
        )
    assert (batcher.batches - before[0], batcher.requests - before[1]) == (1, 7)
    ok, conflict, lost, busy_error, lua_error, loaded, acquired = results
    assert ok is None
    assert isinstance(conflict, CheckpointConflictError)
    assert (conflict.expected, conflict.actual) == ("c00", "c01")
    assert isinstance(lost, LeaseLostError)
    assert (lost.token, lost.current) == (stale.token, holder.token)
    assert isinstance(busy_error, ThreadBusyError) and busy_error.holder == "w1"
    assert isinstance(lua_error, ResponseError) and "WRONGTYPE" in str(lua_error)
    assert isinstance(loaded, LoadedCheckpoint) and loaded.record.checkpoint_id == "c01"
    assert isinstance(acquired, tuple) and acquired[0].token == 1 and acquired[1] is None
    head = await redis_saver.load("ok")
    assert head is not None and head.record.checkpoint_id == "c02"
    assert await redis_saver.load("lost") is None  # the lost lease wrote nothing
    await redis_saver.release_lease(busy)


@pytest.mark.anyio
async def test_noscript_inside_a_pipeline_is_cured_in_one_more_round_trip(
    redis_saver: RedisSaver,
) -> None:
    """After SCRIPT FLUSH (or a restart), a batch's calls are refused with NOSCRIPT: the
    pipeline loads each script once and resends the refused calls behind the loads."""
    ch = {"a": "1", "b": "1"}
    await redis_saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)
    client = await redis_saver.get_client()
    pipeline = await _pipeline_of(redis_saver)
    batcher = redis_saver.batcher()
    assert batcher is not None
    for _ in range(2):
        await client.script_flush()
        trips, batches = pipeline.round_trips, batcher.batches
        with _round_trips(redis_saver) as calls, _busy(redis_saver):
            results = await asyncio.gather(
                redis_saver.load("t"),
                redis_saver.commit_many(_chain("u", 2)),
                redis_saver.load("t", checkpoint_id="c01"),
                redis_saver.acquire_and_load("v", "w", 30),
                redis_saver.commit(_record("t", "c02", "c00"), [], expected_head="c00"),
                return_exceptions=True,
            )
        assert (batcher.batches - batches, pipeline.round_trips - trips) == (1, 2)
        first, second = calls[:5], calls[5:]
        assert [c[0] for c in first] == ["EVALSHA"] * 5
        loads = [c[2] for c in second if c[0] == "SCRIPT"]
        assert sorted(loads) == sorted(
            s.source for s in (_scripts.LOAD, _scripts.COMMIT, _scripts.ACQUIRE_AND_LOAD)
        )
        assert [c[0] for c in second[len(loads) :]] == ["EVALSHA"] * 5
        loaded, ok, again, acquired, conflict = results
        assert isinstance(loaded, LoadedCheckpoint) and loaded == again
        assert ok is None and isinstance(acquired, tuple)
        assert isinstance(conflict, CheckpointConflictError) and conflict.actual == "c01"
        used = (_scripts.LOAD, _scripts.COMMIT, _scripts.ACQUIRE_AND_LOAD)
        assert await client.script_exists(*(s.sha for s in used)) == [True] * 3
        await redis_saver.release_lease(acquired[0])
        await redis_saver.delete_thread("u")


@pytest.mark.anyio
@pytest.mark.parametrize("retries", [1, 0])
async def test_connection_dropped_in_the_middle_of_a_pipeline(retries: int) -> None:
    """The connection drops after the first reply of a batch was read: with a retry left, only
    the calls not answered are resent (on a new connection); without, they fail with a
    transient `StoreUnavailableError` and the answered call keeps its reply."""
    require_service("redis", REDIS_URL)
    saver = RedisSaver(
        REDIS_URL, prefix=_prefix(), max_connections=1, retry=Retry(NoBackoff(), retries)
    )
    try:
        await saver.setup()
        ch = {"a": "1", "b": "1"}
        await saver.commit(_record("t", "c01", channels=ch), _blobs(ch), expected_head=None)
        pipeline = await _pipeline_of(saver)
        conn = await pipeline.pool.get_connection()  # the pool's only connection
        await pipeline.pool.release(conn)
        original = conn.read_response
        reads = 0

        async def read_response(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            if reads == 2:
                await conn.disconnect(nowait=True)
                raise RedisConnectionError("connection dropped (test)")
            return await original(*args, **kwargs)

        conn.read_response = read_response  # type: ignore[method-assign]
        try:
            with _round_trips(saver) as calls, _busy(saver):
                first, second, third = await asyncio.gather(
                    saver.load("t"),
                    saver.load("t", checkpoint_id="c01"),
                    saver.load("t", checkpoint_id="c99"),
                    return_exceptions=True,
                )
        finally:
            del conn.read_response
        assert isinstance(first, LoadedCheckpoint) and first.record.checkpoint_id == "c01"
        if retries:
            assert second == first and third is None
            assert len(calls) == 3 + 2  # the second round trip resends the two unanswered
        else:
            for error in (second, third):
                assert isinstance(error, StoreUnavailableError) and error.transient
                assert isinstance(error.__cause__, RedisConnectionError)
            assert second is not third  # each caller raises an error of its own
            assert len(calls) == 3
        assert await saver.load("t") == first  # the pool's connection works again
    finally:
        await saver.destroy()
        await saver.aclose()


@pytest.mark.anyio
async def test_a_call_with_a_bad_argument_fails_alone(redis_saver: RedisSaver) -> None:
    pipeline = await _pipeline_of(redis_saver)
    keys, args = redis_saver._load_call("t", "", None)
    keys, args = [*keys, redis_saver._store_key], [*args, redis_saver._store_id]  # its identity
    bad = [True, *args[1:]]  # redis-py refuses bools; so does the pipeline, for that call only
    outcomes = await pipeline.execute(
        [(_scripts.LOAD, keys, args), (_scripts.LOAD, keys, bad), (_scripts.LOAD, keys, args)]
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], DataError)


@pytest.mark.anyio
async def test_aclose_answers_the_batches_in_flight() -> None:
    require_service("redis", REDIS_URL)
    saver = RedisSaver(REDIS_URL, prefix=_prefix(), max_batch=8, batches_in_flight=1)
    await saver.setup()
    tasks = [asyncio.create_task(saver.commit_many(_chain(f"t{i}", 2))) for i in range(50)]
    batcher = saver.batcher()
    pipeline = await _pipeline_of(saver)
    assert batcher is not None
    while not batcher.requests:  # until the first batch is out (the others are queued)
        await asyncio.sleep(0)
    assert batcher.requests < 49
    await saver.aclose()
    assert await asyncio.gather(*tasks) == [None] * 50
    assert pipeline.calls == batcher.requests + 2 == 51  # (the first alone; the id at setup)
    assert len(await saver.list_threads()) == 50  # (a new client: closing is not final)
    await saver.destroy()
    await saver.aclose()


def test_event_loops_in_two_threads_batch_their_own_calls() -> None:
    """Futures belong to a loop: each loop using the saver gets its own client and batcher."""
    require_service("redis", REDIS_URL)
    saver = RedisSaver(REDIS_URL, prefix=_prefix())

    async def work(tag: str) -> tuple[int, int]:
        results = await asyncio.gather(*(_thread_run(saver, f"{tag}-{i}") for i in range(30)))
        for token, loaded, head in results:
            assert token == 2 and loaded is not None and loaded.record.checkpoint_id == "c03"
            assert head is not None and head.record.checkpoint_id == "c04"
        batcher = saver.batcher()
        assert batcher is not None and batcher.batches < batcher.requests
        return (await _pipeline_of(saver)).calls, id(batcher)

    try:
        with ThreadPoolExecutor(2) as pool:
            (a, id_a), (b, id_b) = pool.map(lambda tag: asyncio.run(work(tag)), ["a", "b"])
        assert {a, b} <= {7 * 30, 7 * 30 + 1} and id_a != id_b  # (+ 1: learning the store id)
        assert saver._clients == {}  # each asyncio.run closed its loop's client
    finally:

        async def cleanup() -> None:
            assert len(await saver.list_threads()) == 60
            await saver.destroy()
            await saver.aclose()

        asyncio.run(cleanup())
