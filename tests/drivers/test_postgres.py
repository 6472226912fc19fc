"""PostgreSQL driver specifics: URL and options, migrations, pools across event loops, races, and
the one-round-trip claims (measured with a counting TCP proxy in front of the server); for
coordination: the inbox query plan, concurrent claimers, fencing under a take-over, LISTEN/NOTIFY.

The shared protocol behaviour is covered by tests/checkpoint/test_conformance.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from apps.services import IN_CI, POSTGRES_URL, require_service

from hitl_async import (
    BlobRecord,
    CheckpointConflictError,
    CheckpointRecord,
    InboxEntry,
    LeaseLostError,
    RunRequest,
    SerializationError,
    StoreUnavailableError,
    ThreadBusyError,
    WriteRecord,
)
from hitl_async.checkpoint.base import Commit, LoadedCheckpoint
from hitl_async.checkpoint.capabilities import InboxQuery
from hitl_async.errors import CorruptRecordError, InvalidThreadIdError

try:
    import asyncpg
    import hitl_async_postgres._pool as pg_pool
    from hitl_async_postgres import LATEST_VERSION, MIGRATIONS, PostgresSaver, from_url
    from hitl_async_postgres._migrate import migrate
    from hitl_async_postgres._url import split_url
except ImportError:  # pragma: no cover - depends on the environment
    if IN_CI:
        raise
    pytest.skip(
        "hitl_async_postgres is not installed: pip install -e drivers/postgres",
        allow_module_level=True,
    )

CREATED = "2024-01-01T00:00:00.000000+00:00"


def new_schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def rec(thread_id: str, checkpoint_id: str, a: str, parent: str | None = None) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id, "", checkpoint_id, parent, CREATED, {"a": a, "b": "1"}, b"h", {"n": a}
    )


def blobs(a: str, *, with_b: bool = False) -> list[BlobRecord]:
    out = [BlobRecord("a", a, b"x" * 50)]
    return [*out, BlobRecord("b", "1", b"y" * 50)] if with_b else out


async def drop(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def sql(query: str, *args: Any) -> list[asyncpg.Record]:
    """Inspect the database on a connection of its own."""
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@pytest.fixture
async def pg() -> AsyncIterator[PostgresSaver]:
    """A set-up saver on a fresh schema, dropped afterwards."""
    require_service("postgres", POSTGRES_URL)
    saver = PostgresSaver(POSTGRES_URL, schema=new_schema())
    await saver.setup()
    try:
        yield saver
    finally:
        await saver.destroy()
        await saver.aclose()


# ---------------------------------------------------------------------------- URL and options


def test_url_options_are_parsed_and_removed_from_the_dsn() -> None:
    dsn, options = split_url(
        "postgresql://u:p%40ss@db:6543/app?schema=hitl&min_size=2&max_size=20&sslmode=disable"
        "&command_timeout=1.5&connect_timeout=3&statement_cache_size=50&setup=false"
    )
    assert dsn == "postgresql://u:p%40ss@db:6543/app?sslmode=disable"
    assert options == {
        "schema": "hitl",
        "min_size": 2,
        "max_size": 20,
        "command_timeout": 1.5,
        "connect_timeout": 3.0,
        "statement_cache_size": 50,
        "setup": False,
    }


def test_from_url_keyword_options_win_and_build_the_pool_options() -> None:
    saver = from_url("postgres://u@db/app?schema=one&max_size=3&pgbouncer=yes", schema="two")
    assert saver.schema == "two"
    assert saver.dsn == "postgres://u@db/app"
    assert saver.pgbouncer is True
    assert saver.pool_options["max_size"] == 3
    assert saver.pool_options["min_size"] == 1
    assert saver.pool_options["statement_cache_size"] == 0
    default = from_url("postgresql://u@db/app", connect_timeout=2, command_timeout=4)
    assert default.schema == "hitl" and default.auto_setup is True  # (a schema of its own)
    assert default.pool_options["max_size"] == 10
    assert default.pool_options["timeout"] == 2 and default.pool_options["command_timeout"] == 4
    assert "statement_cache_size" not in default.pool_options  # asyncpg's own default


def test_connect_finds_the_driver_and_does_no_io() -> None:
    from hitl_async import connect

    saver = connect("postgresql://nobody@127.0.0.1:1/nowhere", schema="s", max_size=2)
    assert isinstance(saver, PostgresSaver)
    assert saver.schema == "s" and saver.pool_options["max_size"] == 2
    assert isinstance(connect("postgres://nobody@127.0.0.1:1/nowhere"), PostgresSaver)


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("mysql://u@h/db", {}, "not a PostgreSQL URL"),
        ("postgresql://u@h/db", {"schema": 'x"; DROP SCHEMA public; --'}, "invalid PostgreSQL"),
        ("postgresql://u@h/db", {"schema": "1abc"}, "invalid PostgreSQL schema"),
        ("postgresql://u@h/db", {"schema": "a" * 64}, "invalid PostgreSQL schema"),
        ("postgresql://u@h/db?max_size=lots", {}, "max_size"),
        ("postgresql://u@h/db?setup=maybe", {}, "setup"),
        ("postgresql://u@h/db", {"min_size": 5, "max_size": 2}, "pool sizes"),
        ("postgresql://u@h/db", {"pgbouncer": True, "statement_cache_size": 10}, "pgbouncer"),
    ],
)
def test_bad_urls_and_options(url: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_url(url, **options)


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        from_url("postgresql://u@h/db", prefix="x")


@pytest.mark.anyio
async def test_nul_in_thread_id_is_rejected_by_name() -> None:
    saver = PostgresSaver("postgresql://nobody@127.0.0.1:1/nowhere")  # never connects
    with pytest.raises(InvalidThreadIdError, match=r"thread id 'a\\x00b' is not valid.*NUL"):
        await saver.commit(rec("a\x00b", "1", "1"), blobs("1"), expected_head=None)
    with pytest.raises(ValueError, match="thread id"):
        await saver.load("a\x00b")
    with pytest.raises(ValueError, match="thread id"):
        await saver.history("\x00")
    with pytest.raises(ValueError, match="checkpoint_ns"):
        await saver.put_writes("t", "ns\x00", "1", [WriteRecord("t", 0, "c", b"")])


# ---------------------------------------------------------------------------- migrations


@pytest.mark.anyio
async def test_migrations_are_recorded_and_idempotent(pg: PostgresSaver) -> None:
    rows = await sql(f'SELECT version, applied_at FROM "{pg.schema}".hitl_migrations ORDER BY 1')
    assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
    assert rows[-1]["version"] == LATEST_VERSION
    assert all(r["applied_at"] is not None for r in rows)
    assert pg.applied_migrations == [m.version for m in MIGRATIONS]

    again = PostgresSaver(POSTGRES_URL, schema=pg.schema)
    try:
        await again.setup()
        assert again.applied_migrations == []
    finally:
        await again.aclose()
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        assert await migrate(conn, pg.schema) == []
        # a schema one version behind gets exactly the missing version
        await conn.execute(
            f'DELETE FROM "{pg.schema}".hitl_migrations WHERE version = $1', LATEST_VERSION
        )
        assert await migrate(conn, pg.schema) == [LATEST_VERSION]
    finally:
        await conn.close()
    after = await sql(f'SELECT version, applied_at FROM "{pg.schema}".hitl_migrations ORDER BY 1')
    assert [r["version"] for r in after] == [r["version"] for r in rows]
    assert after[:-1] == rows[:-1]  # untouched rows keep their applied_at


@pytest.mark.anyio
async def test_migration_3_stops_checkpoint_id_reuse_on_an_existing_schema(
    pg: PostgresSaver,
) -> None:
    """A schema created before migration 3 upserted a re-committed checkpoint id; migrating it
    replaces `hitl_commit` in place, and the same commit is then refused, writing nothing."""
    v2 = next(m for m in MIGRATIONS if m.version == 2)
    conn = await asyncpg.connect(POSTGRES_URL)
    try:  # put the schema back at version 2: its hitl_commit, and no rows for later versions
        await conn.execute(v2.render(f'"{pg.schema}"'))
        await conn.execute(f'DELETE FROM "{pg.schema}".hitl_migrations WHERE version > 2')
        await pg.commit(rec("t", "001", "1"), blobs("1", with_b=True), expected_head=None)
        await pg.commit(rec("t", "001", "2"), blobs("2"), expected_head="001")  # the old upsert
        stored = await pg.load("t")
        assert stored is not None and stored.record.channel_versions["a"] == "2"

        assert await migrate(conn, pg.schema) == [m.version for m in MIGRATIONS if m.version > 2]
        with pytest.raises(CheckpointConflictError, match="'001' already exists") as info:
            await pg.commit(rec("t", "001", "3"), blobs("3"), expected_head="001")
        assert info.value.expected == info.value.actual == "001"
    finally:
        await conn.close()
    after = await pg.load("t")
    assert after is not None and after.record == stored.record and after.blobs == stored.blobs
    rows = await sql(f'SELECT version FROM "{pg.schema}".blobs WHERE channel = $1', "a")
    assert sorted(r[0] for r in rows) == ["1", "2"]  # blob "3" was not written
    await pg.commit(rec("t", "002", "3", "001"), blobs("3"), expected_head="001")


@pytest.mark.anyio
async def test_missing_blob_is_a_serialization_error(pg: PostgresSaver) -> None:
    await pg.commit(rec("t", "001", "1"), blobs("1", with_b=True), expected_head=None)
    await sql(f'DELETE FROM "{pg.schema}".blobs WHERE channel = $1', "b")
    for load in (lambda: pg.load("t"), lambda: pg.load("t", "", "001"), lambda: pg.history("t")):
        with pytest.raises(SerializationError, match="checkpoint '001': no blob for channel 'b'"):
            await load()


@pytest.mark.anyio
async def test_concurrent_setup_on_a_fresh_schema() -> None:
    """Savers with separate pools (separate server sessions) race to create the same schema."""
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    savers = [PostgresSaver(POSTGRES_URL, schema=schema, setup=False) for _ in range(4)]
    try:
        await asyncio.gather(*(s.setup() for s in savers))
        applied = sorted(v for s in savers for v in s.applied_migrations)
        assert applied == [m.version for m in MIGRATIONS]  # each version applied exactly once
        rows = await sql(f'SELECT version FROM "{schema}".hitl_migrations ORDER BY 1')
        assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
        await savers[0].commit(rec("t", "1", "1"), blobs("1", with_b=True), expected_head=None)
        loaded = await savers[3].load("t")
        assert loaded is not None and loaded.record.checkpoint_id == "1"
    finally:
        for s in savers:
            await s.aclose()
        await drop(schema)


@pytest.mark.anyio
async def test_lazy_setup_on_first_use_and_setup_false() -> None:
    require_service("postgres", POSTGRES_URL)
    lazy, manual = new_schema(), new_schema()
    auto = PostgresSaver(POSTGRES_URL, schema=lazy)
    off = PostgresSaver(POSTGRES_URL, schema=manual, setup=False)
    try:
        assert await auto.load("t") is None  # first use creates the schema
        assert await sql("SELECT 1 FROM pg_namespace WHERE nspname = $1", lazy)
        with pytest.raises(asyncpg.UndefinedTableError):
            await off.load("t")
        await off.setup()
        assert await off.load("t") is None
    finally:
        await auto.destroy()
        await off.destroy()
        await auto.aclose()
        await off.aclose()
    assert not await sql("SELECT 1 FROM pg_namespace WHERE nspname = ANY($1)", [lazy, manual])


# ---------------------------------------------------------------------------- pools and loops


@pytest.mark.anyio
async def test_concurrent_first_use_creates_one_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    require_service("postgres", POSTGRES_URL)
    created: list[asyncpg.Pool] = []
    real = asyncpg.create_pool

    def counting(*args: Any, **kwargs: Any) -> asyncpg.Pool:
        pool = real(*args, **kwargs)
        created.append(pool)
        return pool

    monkeypatch.setattr(asyncpg, "create_pool", counting)
    saver = PostgresSaver(POSTGRES_URL, schema=new_schema())
    try:
        assert await asyncio.gather(*(saver.load(f"t{i}") for i in range(20))) == [None] * 20
        assert len(created) == 1
    finally:
        await saver.destroy()
        await saver.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await saver.load("t")


def test_saver_used_from_two_event_loops() -> None:
    """Two `asyncio.run` calls: the second loop gets a pool of its own; the first pool and its
    LISTEN connection are closed when its loop shuts down."""
    require_service("postgres", POSTGRES_URL)
    saver = PostgresSaver(POSTGRES_URL, schema=new_schema(), min_size=2)

    async def first() -> int:
        await saver.commit(rec("t", "1", "1"), blobs("1", with_b=True), expected_head=None)
        await saver.wait_for_change("t", 0.01)
        listener = saver._pools[asyncio.get_running_loop()].listener
        assert listener is not None
        return listener.conn.get_server_pid()

    async def gone(pid: int) -> bool:
        for _ in range(100):
            if not await sql("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid):
                return True
            await asyncio.sleep(0.02)
        return False

    async def second() -> int:
        await saver.commit(rec("t", "2", "2", "1"), blobs("2"), expected_head="1")
        got = await saver.load("t")
        assert got is not None and got.record.checkpoint_id == "2"
        assert dict(got.blobs) == {"a": b"x" * 50, "b": b"y" * 50}
        return len(saver._pools)

    async def finish() -> None:
        await saver.destroy()
        await saver.aclose()

    pid = asyncio.run(first())
    assert saver._pools == {}  # its keeper closed the pool as the loop shut down
    assert asyncio.run(gone(pid))  # and the listener
    assert asyncio.run(second()) == 1
    asyncio.run(finish())


# ---------------------------------------------------------------------------- races


@pytest.mark.anyio
async def test_concurrent_commits_same_expected_head_one_wins() -> None:
    """Writers on separate pools race from the same head, many rounds: one winner per round, and
    the losers leave no checkpoint, blob or write behind."""
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    savers = [PostgresSaver(POSTGRES_URL, schema=schema) for _ in range(4)]
    try:
        await savers[0].setup()
        await savers[0].commit(rec("t", "000", "0"), blobs("0", with_b=True), expected_head=None)
        head = "000"
        for round_ in range(1, 11):

            async def attempt(k: int, parent: str, round_: int = round_) -> str | None:
                cid = f"{round_:03d}-{k}"
                try:
                    await savers[k].commit(
                        rec("t", cid, cid, parent),
                        blobs(cid),
                        expected_head=parent,
                        writes=[WriteRecord("task", 0, "a", cid.encode())],
                    )
                except CheckpointConflictError as exc:
                    assert exc.expected == parent and exc.actual is not None
                    return None
                return cid

            results = await asyncio.gather(*(attempt(k, head) for k in range(len(savers))))
            winners = [r for r in results if r is not None]
            assert len(winners) == 1
            head = winners[0]
        history = await savers[0].history("t")
        assert len(history) == 11
        assert history[0].record.checkpoint_id == head
        assert (await sql(f'SELECT count(*) FROM "{schema}".blobs'))[0][0] == 12
        assert (await sql(f'SELECT count(*) FROM "{schema}".writes'))[0][0] == 10
    finally:
        for s in savers:
            await s.aclose()
        await drop(schema)


@pytest.mark.anyio
async def test_prune_removes_unreferenced_blobs_and_writes(pg: PostgresSaver) -> None:
    head: str | None = None
    for i in range(1, 6):
        cid = f"{i:03d}"
        await pg.commit(
            rec("t", cid, str(i), head), blobs(str(i), with_b=i == 1), expected_head=head
        )
        await pg.put_writes("t", "", cid, [WriteRecord("task", 0, "a", b"w")])
        head = cid
    assert await pg.prune("t", keep_last=2) == 3
    rows = await sql(f'SELECT channel, version FROM "{pg.schema}".blobs ORDER BY 1, 2')
    assert [tuple(r) for r in rows] == [("a", "4"), ("a", "5"), ("b", "1")]
    rows = await sql(f'SELECT checkpoint_id FROM "{pg.schema}".writes ORDER BY 1')
    assert [r[0] for r in rows] == ["004", "005"]


# ---------------------------------------------------------------------------- round trips


class RoundTripCounter:
    """A TCP proxy in front of PostgreSQL counting round trips: each time the client speaks after
    the server did (or first) is one."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5432
        self._parts = parts
        self.count = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        netloc = self._parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        netloc_new = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        return urlunsplit(self._parts._replace(netloc=netloc_new))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        last: list[str] = [""]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, side: str) -> None:
            try:
                while data := await src.read(1 << 16):
                    if side == "client" and last[0] != "client":
                        self.count += 1
                    last[0] = side
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        for coro in (pipe(reader, up_writer, "client"), pipe(up_reader, writer, "server")):
            task = asyncio.ensure_future(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def round_trips(counter: RoundTripCounter, op: Callable[[], Awaitable[object]]) -> int:
    before = counter.count
    await op()
    return counter.count - before


@pytest.mark.anyio
@pytest.mark.parametrize("pgbouncer", [False, True], ids=["default", "pgbouncer"])
async def test_one_round_trip_per_operation(pgbouncer: bool) -> None:
    """After warm-up, commit/load/history/put_writes are each one round trip (two with
    pgbouncer=True: unnamed prepare, then execute), and no named prepared statement is left on
    the server in pgbouncer mode."""
    require_service("postgres", POSTGRES_URL)
    counter = RoundTripCounter(POSTGRES_URL)
    url = await counter.start()
    schema = new_schema()
    saver = PostgresSaver(url, schema=schema, min_size=1, max_size=1, pgbouncer=pgbouncer)
    try:
        await saver.setup()
        head: str | None = None
        for i in range(1, 4):  # warm the statement cache
            cid = f"{i:03d}"
            await saver.commit(
                rec("t", cid, str(i), head), blobs(str(i), with_b=True), expected_head=head
            )
            await saver.put_writes("t", "", cid, [WriteRecord("task", 0, "a", b"w")])
            await saver.load("t")
            await saver.load("t", "", cid)
            await saver.history("t")
            head = cid
        per_call = 2 if pgbouncer else 1
        commit = lambda: saver.commit(  # noqa: E731
            rec("t", "004", "4", head),
            blobs("4"),
            expected_head=head,
            writes=[WriteRecord("task", 0, "a", b"w"), WriteRecord("task", 1, "b", b"v")],
        )
        assert await round_trips(counter, commit) == per_call
        put = lambda: saver.put_writes("t", "", "004", [WriteRecord("x", 0, "a", b"")])  # noqa: E731
        assert await round_trips(counter, put) == per_call
        assert await round_trips(counter, lambda: saver.load("t")) == per_call
        assert await round_trips(counter, lambda: saver.load("t", "", "002")) == per_call
        assert await round_trips(counter, lambda: saver.history("t")) == per_call
        history = await saver.history("t")
        assert [h.record.checkpoint_id for h in history] == ["004", "003", "002", "001"]
        assert all(len(h.blobs) == 2 for h in history)
        assert len(history[0].writes) == 3
        before = counter.count
        with pytest.raises(CheckpointConflictError, match="'004' already exists"):
            await saver.commit(rec("t", "004", "9", "004"), blobs("9"), expected_head="004")
        assert counter.count - before == per_call  # a reused id is refused in the same round trip

        pool = await saver._pool()
        async with pool.acquire() as conn:
            named = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")
        assert (named == 0) if pgbouncer else (named > 0)
    finally:
        await saver.destroy()
        await saver.aclose()
        await counter.close()


@pytest.mark.anyio
async def test_history_scans_the_primary_key_backwards(pg: PostgresSaver) -> None:
    head: str | None = None
    for i in range(200):
        cid = f"{i:05d}"
        await pg.commit(
            rec("t", cid, str(i), head), blobs(str(i), with_b=i == 0), expected_head=head
        )
        head = cid
    await sql(f'ANALYZE "{pg.schema}".checkpoints')
    pool = await pg._pool()
    plan = await pool.fetch(
        "EXPLAIN " + pg._q.history(before=True, exact=False, loose=False), "t", "", 10, "00150"
    )
    text = "\n".join(r[0] for r in plan)
    assert "Index Scan Backward using checkpoints_pkey" in text, text
    assert "Index Cond: ((thread_id = x.thread_id)" not in text
    page = await pg.history("t", before="00150", limit=10)
    assert [h.record.checkpoint_id for h in page] == [f"{i:05d}" for i in range(149, 139, -1)]


# ---------------------------------------------------------------------------- coordination


def inbox_entry(thread_id: str, interrupt_id: str, created: str = CREATED, **kw: Any) -> InboxEntry:
    return InboxEntry(thread_id, interrupt_id, "", "ask", b"q", created, **kw)


def run_request(rid: str, thread_id: str, queue: str = "q", n: int = 0) -> RunRequest:
    return RunRequest(rid, queue, thread_id, b"p", created_at=f"2024-01-01T00:00:00.{n:06d}+00:00")


@pytest.mark.anyio
async def test_inbox_query_plan_reads_only_the_inbox(pg: PostgresSaver) -> None:
    """With 1200 checkpoints (and their blobs and writes) and 3000 pending interrupts, every
    list_inbox variant reads the inbox table alone; a keyset page is an ordered scan of
    `inbox_order` bounded by the `after` triple."""
    s = f'"{pg.schema}"'
    await sql(
        f"INSERT INTO {s}.checkpoints SELECT 't' || (i % 40), '', lpad(i::text, 6, '0'), NULL,"
        f" $1, jsonb_build_object('a', i::text), '\\x00', '{{}}' FROM generate_series(1, 1200) i",
        CREATED,
    )
    await sql(
        f"INSERT INTO {s}.blobs SELECT 't' || (i % 40), '', 'a', i::text, '\\x00'"
        " FROM generate_series(1, 1200) i"
    )
    await sql(
        f"INSERT INTO {s}.writes SELECT 't' || (i % 40), '', lpad(i::text, 6, '0'), 'task', 0,"
        " 'a', '\\x00', '' FROM generate_series(1, 1200) i"
    )
    await sql(
        f"INSERT INTO {s}.inbox SELECT 'w' || (i % 500), 'i' || i, '', 'ask', '\\x00',"
        " '2024-01-01T00:00:00.' || lpad(i::text, 6, '0') || '+00:00',"
        " CASE WHEN i % 100 = 0 THEN i END, NULL, 'g' FROM generate_series(1, 3000) i"
    )
    await pg.commit(
        rec("one", "001", "1"), blobs("1", with_b=True), expected_head=None,
        inbox=[inbox_entry("one", "z", "2099-01-01T00:00:00.000000+00:00")],
    )  # fmt: skip
    await sql(f"ANALYZE {s}.checkpoints, {s}.blobs, {s}.writes, {s}.inbox")
    pool = await pg._pool()
    after = ("2024-01-01T00:00:00.002000+00:00", "w0", "i2000")
    keyset = pg._q.list_inbox(thread=False, node=False, graph=False, due=False, after=True)
    plan = "\n".join(r[0] for r in await pool.fetch("EXPLAIN " + keyset, 10, *after))
    assert "Index Scan using inbox_order on inbox" in plan, plan
    assert "Index Cond: (ROW(created_at, thread_id, interrupt_id) > ROW(" in plan, plan
    others = re.compile(r"\b(checkpoints|blobs|writes|threads)\b")
    values: dict[str, tuple[Any, ...]] = {
        "thread": ("w1",), "node": ("ask",), "graph": ("g",), "due": (1e9,), "after": after,
    }  # fmt: skip
    for flags in itertools.product((False, True), repeat=len(values)):
        used = dict(zip(values, flags, strict=True))
        args = [v for name, on in used.items() if on for v in values[name]]
        query = "EXPLAIN " + pg._q.list_inbox(**used)
        plan = "\n".join(r[0] for r in await pool.fetch(query, 10, *args))
        assert " on inbox " in plan and not others.search(plan), (used, plan)

    page = await pg.list_inbox(InboxQuery(after=after, limit=3))
    assert [e.interrupt_id for e in page] == ["i2001", "i2002", "i2003"]
    seen, cursor = 0, None
    while batch := await pg.list_inbox(InboxQuery(after=cursor, limit=700)):
        seen += len(batch)
        cursor = (batch[-1].created_at, batch[-1].thread_id, batch[-1].interrupt_id)
    assert seen == 3001
    due = await pg.list_inbox(InboxQuery(due_before=1000.5, graph="g"))
    assert [e.deadline for e in due] == [100.0 * k for k in range(1, 11)]


@pytest.mark.anyio
async def test_twenty_concurrent_claimers_take_each_of_fifty_requests_once() -> None:
    require_service("postgres", POSTGRES_URL)
    saver = PostgresSaver(POSTGRES_URL, schema=new_schema(), max_size=20)
    try:
        await saver.setup()
        for i in range(50):
            await saver.enqueue(run_request(f"r{i:02d}", f"t{i:02d}", n=i))
        claimed: list[str] = []

        async def claimer(k: int) -> None:
            while len(claimed) < 50:
                got = await saver.claim_request("q", f"w{k}", 30)
                if got is None:
                    await asyncio.sleep(0.005)
                    continue
                claimed.append(got.id)
                assert await saver.finish_request(got.id, f"w{k}", "done") is True

        await asyncio.wait_for(asyncio.gather(*(claimer(k) for k in range(20))), 30)
        assert sorted(claimed) == [f"r{i:02d}" for i in range(50)]  # each exactly once
        rows = await sql(
            f'SELECT status, attempts, count(*) FROM "{saver.schema}".runs GROUP BY 1, 2'
        )
        assert [tuple(r) for r in rows] == [("done", 1, 50)]
    finally:
        await saver.destroy()
        await saver.aclose()


@pytest.mark.anyio
async def test_concurrent_claims_never_run_two_requests_of_one_thread() -> None:
    """SKIP LOCKED alone would let two claimers take two requests of one thread (neither sees
    the other's uncommitted claim). Each round of 20 simultaneous claims over 4 threads must
    claim exactly one request per thread: its oldest, within one queue; and one of its two
    queues' oldest when the thread has requests in two queues."""
    require_service("postgres", POSTGRES_URL)
    saver = PostgresSaver(POSTGRES_URL, schema=new_schema(), max_size=20)
    try:
        await saver.setup()
        for n in range(20):
            await saver.enqueue(run_request(f"r{n:02d}", f"t{n % 4}", n=n))
        for round_ in range(5):
            got = await asyncio.gather(*(saver.claim_request("q", f"w{k}", 30) for k in range(20)))
            claimed = sorted((r.thread_id, r.id) for r in got if r is not None)
            assert claimed == [(f"t{t}", f"r{4 * round_ + t:02d}") for t in range(4)], round_
            for r in got:
                if r is not None:
                    assert await saver.finish_request(r.id, r.owner, "done") is True
        assert await saver.claim_request("q", "late", 30) is None

        # One thread's requests in two queues: claimers of both race for it; one wins per round.
        for n in range(40):
            await saver.enqueue(run_request(f"x{n:02d}", f"u{n % 4}", f"q{n % 8 // 4}", n=n))
        for _ in range(10):
            got = await asyncio.gather(
                *(saver.claim_request(f"q{k % 2}", f"w{k}", 30) for k in range(20))
            )
            claimed = [r for r in got if r is not None]
            assert sorted(r.thread_id for r in claimed) == ["u0", "u1", "u2", "u3"]
            for r in claimed:
                assert await saver.finish_request(r.id, r.owner, "done") is True
        assert await saver.claim_request("q0", "late", 30) is None
    finally:
        await saver.destroy()
        await saver.aclose()


@pytest.mark.anyio
async def test_fenced_writes_and_claims_are_one_round_trip() -> None:
    """The lease check, the write, the inbox and the NOTIFY share one round trip; a refused
    write costs one too and leaves nothing behind."""
    require_service("postgres", POSTGRES_URL)
    counter = RoundTripCounter(POSTGRES_URL)
    url = await counter.start()
    saver = PostgresSaver(url, schema=new_schema(), min_size=1, max_size=1)
    try:
        await saver.setup()
        lease = await saver.acquire_lease("t", "w", 30)
        head: str | None = None
        for i in range(1, 4):  # warm the statement cache
            cid = f"{i:03d}"
            entries = [inbox_entry("t", f"i{i}")]
            await saver.commit(
                rec("t", cid, str(i), head), blobs(str(i), with_b=True), expected_head=head,
                lease=lease, inbox=entries,
            )  # fmt: skip
            await saver.put_writes("t", "", cid, [WriteRecord("x", 0, "a", b"")], lease=lease,
                                   inbox=entries)  # fmt: skip
            await saver.enqueue(run_request(f"r{i}", f"q{i}", n=i))
            await saver.claim_request("q", "w", 30)
            head = cid

        async def commit() -> None:
            await saver.commit(
                rec("t", "004", "4", head), blobs("4"), expected_head=head, lease=lease,
                writes=[WriteRecord("task", 0, "a", b"w")], inbox=[inbox_entry("t", "i4")],
            )  # fmt: skip

        assert await round_trips(counter, commit) == 1
        put = lambda: saver.put_writes(  # noqa: E731
            "t", "", "004", [WriteRecord("y", 0, "a", b"")], lease=lease, inbox=[]
        )
        assert await round_trips(counter, put) == 1
        await saver.enqueue(run_request("r9", "t9", n=9))
        assert await round_trips(counter, lambda: saver.claim_request("q", "w", 30)) == 1
        assert await round_trips(counter, lambda: saver.enqueue(run_request("rA", "tA"))) == 1

        await saver.release_lease(lease)
        before = counter.count
        with pytest.raises(LeaseLostError) as lost:
            await saver.commit(
                rec("t", "005", "5", "004"), blobs("5"), expected_head="004", lease=lease,
                inbox=[inbox_entry("t", "i5")],
            )  # fmt: skip
        assert counter.count - before == 1
        assert (lost.value.token, lost.value.current) == (lease.token, lease.token)
        loaded = await saver.load("t")
        assert loaded is not None and loaded.record.checkpoint_id == "004"
        assert [e.interrupt_id for e in await saver.list_inbox()] == []
    finally:
        await saver.destroy()
        await saver.aclose()
        await counter.close()


@pytest.mark.anyio
async def test_a_takeover_waits_for_an_in_flight_fenced_commit(pg: PostgresSaver) -> None:
    """The fencing check share-locks the lease row: a lease that expires while its holder's
    commit is in flight is taken over only after that commit, which the new holder then sees."""
    lease = await pg.acquire_lease("t", "old", 0.3)
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        tx = conn.transaction()
        await tx.start()
        row = await conn.fetchrow(
            pg._q.commit, "t", "", None, "001", None, CREATED, '{"a":"1"}', b"h", "{}",
            ["a"], ["1"], [b"x"], [], [], [], [], [], lease.token, *[None] * 8,
        )  # fmt: skip
        assert row is not None and row["ok"] and row["lease_ok"]
        await asyncio.sleep(0.4)  # the lease expires, by the server clock
        takeover = asyncio.ensure_future(pg.acquire_lease("t", "new", 30))
        await asyncio.sleep(0.3)
        assert not takeover.done()  # waiting on the in-flight commit's row lock
        await tx.commit()
        new = await asyncio.wait_for(takeover, 5)
    finally:
        await conn.close()
    assert new.token == lease.token + 1 and new.owner == "new"
    loaded = await pg.load("t")
    assert loaded is not None and loaded.record.checkpoint_id == "001"


@pytest.mark.anyio
async def test_delete_thread_clears_inbox_and_lease_and_tokens_keep_growing(
    pg: PostgresSaver,
) -> None:
    lease = await pg.acquire_lease("t", "w", 30)
    await pg.commit(
        rec("t", "001", "1"), blobs("1", with_b=True), expected_head=None, lease=lease,
        inbox=[inbox_entry("t", "i1"), inbox_entry("t", "i1", deadline=5.0)],  # last one wins
    )  # fmt: skip
    assert [(e.interrupt_id, e.deadline) for e in await pg.list_inbox()] == [("i1", 5.0)]
    await pg.delete_thread("t")
    assert await pg.list_inbox() == [] and await pg.load("t") is None
    with pytest.raises(LeaseLostError):  # the holder is fenced out
        await pg.commit(rec("t", "002", "2"), blobs("2"), expected_head=None, lease=lease)
    again = await pg.acquire_lease("t", "w2", 30)
    assert again.token == lease.token + 1  # never reused, so an old token can never match
    with pytest.raises(ValueError, match="lease is for thread 't'"):
        await pg.commit(rec("u", "001", "1"), blobs("1"), expected_head=None, lease=again)
    with pytest.raises(ValueError, match="inbox entry 'x' is for thread 'u'"):
        await pg.put_writes("t", "", "001", [], inbox=[inbox_entry("u", "x")])
    with pytest.raises(ValueError, match="status 'running'"):
        await pg.finish_request("r", None, "running")
    await pg.enqueue(run_request("r", "t"))
    with pytest.raises(ValueError, match="'r' already exists"):
        await pg.enqueue(run_request("r", "t"))


@pytest.mark.anyio
async def test_notify_wakes_waiters_across_connections_and_aclose_closes_the_listener() -> None:
    """Waiters in one saver wake on another saver's writes (its own connections); a waiter for
    another thread or queue does not; aclose() closes the LISTEN connection; destroy() works
    while it listens."""
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    waiter = PostgresSaver(POSTGRES_URL, schema=schema)
    writer = PostgresSaver(POSTGRES_URL, schema=schema)
    loop = asyncio.get_running_loop()

    async def woken(wait: Awaitable[None], act: Callable[[], Awaitable[object]]) -> float:
        task = asyncio.ensure_future(wait)
        await asyncio.sleep(0.2)
        started = loop.time()
        await act()
        await asyncio.wait_for(task, 5)
        return loop.time() - started

    try:
        await writer.setup()
        # open the waiter's LISTEN connection first: a wait that is still connecting when the
        # write commits cannot hear it (callers re-read the store after each wait for that reason)
        await waiter.wait_for_change("warm-up", 0)
        long_id = "x" * 1024  # the longest thread id (hitl_async.checkpoint.ids.MAX_ID_BYTES)
        for thread_id in ("t", long_id):
            commit = lambda t=thread_id: writer.commit(  # noqa: E731
                rec(t, "001", "1"), blobs("1", with_b=True), expected_head=None
            )
            assert await woken(waiter.wait_for_change(thread_id, 30), commit) < 2
        put = lambda: writer.put_writes("t", "", "001", [WriteRecord("k", 0, "a", b"")])  # noqa: E731
        assert await woken(waiter.wait_for_change("t", 30), put) < 2
        lease = await writer.acquire_lease("t", "w", 30)
        release = lambda: writer.release_lease(lease)  # noqa: E731
        assert await woken(waiter.wait_for_change("t", 30), release) < 2
        enqueue = lambda: writer.enqueue(run_request("r1", "t", "q1"))  # noqa: E731
        assert await woken(waiter.wait_for_work("q1", 30), enqueue) < 2

        # r2 (queue q2) waits for r1 of the same thread: finishing r1 wakes q2's workers
        await writer.enqueue(run_request("r2", "t", "q2", n=1))
        first = await writer.claim_request("q1", "w", 30)
        assert first is not None and await writer.claim_request("q2", "w", 30) is None
        finish = lambda: writer.finish_request("r1", "w", "done")  # noqa: E731
        assert await woken(waiter.wait_for_work("q2", 30), finish) < 2
        started = loop.time()
        await waiter.wait_for_work("q2", 30)  # r2 is runnable: returns at once
        assert loop.time() - started < 1

        started = loop.time()
        other = asyncio.ensure_future(waiter.wait_for_change("other", 0.5))
        await writer.commit(rec("t", "002", "2", "001"), blobs("2"), expected_head="001")
        await other
        assert loop.time() - started >= 0.45  # not woken by thread t

        listener = waiter._pools[loop].listener
        assert listener is not None
        pid = listener.conn.get_server_pid()
        assert await sql("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid)
        await writer.destroy()  # the listener holds no lock on the schema
        await waiter.aclose()
        for _ in range(100):
            if not await sql("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the LISTEN connection is still open after aclose()")
        with pytest.raises(RuntimeError, match="closed"):
            await waiter.wait_for_change("t", 0.1)
    finally:
        await writer.aclose()
        await waiter.aclose()
        await drop(schema)


@pytest.mark.anyio
async def test_migration_4_upgrades_a_version_3_schema_with_data() -> None:
    """A schema at version 3, written by an earlier client, gains the coordination tables; its
    checkpoints stay, and the 17-argument hitl_commit keeps working for clients not yet
    upgraded (rolling deploys)."""
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    quoted = f'"{schema}"'
    legacy = (
        f"SELECT ok FROM {quoted}.hitl_commit($1::text, '', $2::text, $3::text, $2::text, $4::text,"
        " '{\"a\":\"1\"}', '\\x00', '{}', '{a}', '{1}', '{\"\\\\x00\"}', '{}', '{}', '{}', '{}',"
        " '{}')"
    )
    conn = await asyncpg.connect(POSTGRES_URL)
    saver = PostgresSaver(POSTGRES_URL, schema=schema)
    try:
        await conn.execute(f"CREATE SCHEMA {quoted}")
        await conn.execute(
            f"CREATE TABLE {quoted}.hitl_migrations (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in MIGRATIONS[:3]:
            await conn.execute(m.render(quoted))
            await conn.execute(f"INSERT INTO {quoted}.hitl_migrations VALUES ($1)", m.version)
        assert await conn.fetchval(legacy, "t", None, "001", CREATED) is True
        assert await migrate(conn, schema) == [m.version for m in MIGRATIONS if m.version > 3]

        loaded = await saver.load("t")
        assert loaded is not None and loaded.record.checkpoint_id == "001"
        lease = await saver.acquire_lease("t", "w", 30)
        await saver.commit(
            rec("t", "002", "2", "001"), blobs("2", with_b=True), expected_head="001",
            lease=lease, inbox=[inbox_entry("t", "i")],
        )  # fmt: skip
        assert await conn.fetchval(legacy, "t", "002", "003", CREATED) is True  # old client
        assert [e.interrupt_id for e in await saver.list_inbox()] == ["i"]
    finally:
        await conn.close()
        await saver.aclose()
        await drop(schema)


# ---------------------------------------------------------------------------- chains (migration 5)


def chain(thread_id: str, n: int, head: str | None = None, first: int = 1) -> list[Commit]:
    """`n` linked commits after `head`: ids `first`.. as 3 digits; each changes channel a, the
    first also writes b; each has two writes (the second repeated: the last one wins) and
    every other one replaces the inbox."""
    out = []
    for i in range(first, first + n):
        cid = f"{i:03d}"
        writes = [
            WriteRecord("task", 0, "a", f"w{i}".encode()),
            WriteRecord("task", 1, "b", b"old", "p"),
            WriteRecord("task", 1, "b", f"v{i}".encode(), "p"),
        ]
        inbox = [inbox_entry(thread_id, f"i{i}", deadline=float(i))] if i % 2 else None
        out.append(
            Commit(rec(thread_id, cid, str(i), head), blobs(str(i), with_b=i == 1), head, writes,
                   inbox)
        )  # fmt: skip
        head = cid
    return out


def comparable(loaded: LoadedCheckpoint | None) -> tuple[Any, ...]:
    """A loaded checkpoint without its thread id, writes in key order."""
    assert loaded is not None
    record = dataclasses.replace(loaded.record, thread_id="")
    return record, dict(loaded.blobs), sorted(loaded.writes, key=lambda w: (w.task_id, w.idx))


async def stored_rows(pg: PostgresSaver, thread_id: str) -> dict[str, int]:
    """How many rows of each table the thread has (checkpoints, blobs, writes, inbox)."""
    counts = {}
    for table in ("checkpoints", "blobs", "writes", "inbox"):
        query = f'SELECT count(*) FROM "{pg.schema}".{table} WHERE thread_id = $1'
        counts[table] = (await sql(query, thread_id))[0][0]
    return counts


@pytest.mark.anyio
async def test_commit_many_is_one_round_trip_and_stores_what_single_commits_store() -> None:
    """A chain of 12 fenced commits with inboxes and release=True is one round trip (also when
    it ends the lease), and the thread reads back exactly as one committed one by one; the
    release lets another owner in."""
    require_service("postgres", POSTGRES_URL)
    counter = RoundTripCounter(POSTGRES_URL)
    url = await counter.start()
    saver = PostgresSaver(url, schema=new_schema(), min_size=1, max_size=1)
    try:
        await saver.setup()
        warm = await saver.acquire_lease("warm", "w", 30)
        await saver.commit_many(chain("warm", 3), lease=warm, release=True)  # prepare

        lease = await saver.acquire_lease("many", "w", 30)
        commits = chain("many", 12)
        done = lambda: saver.commit_many(commits, lease=lease, release=True)  # noqa: E731
        assert await round_trips(counter, done) == 1
        single = await saver.acquire_lease("single", "w", 30)
        for c in chain("single", 12):
            await saver.commit(c.record, c.blobs, expected_head=c.expected_head, writes=c.writes,
                               lease=single, inbox=c.inbox)  # fmt: skip

        many, one = await saver.history("many"), await saver.history("single")
        assert [h.record.checkpoint_id for h in many] == [f"{i:03d}" for i in range(12, 0, -1)]
        assert [comparable(h) for h in many] == [comparable(h) for h in one]
        assert comparable(await saver.load("many")) == comparable(await saver.load("single"))
        assert {k: v for k, v in (await stored_rows(saver, "many")).items()} == {
            "checkpoints": 12, "blobs": 13, "writes": 24, "inbox": 1,
        }  # fmt: skip
        assert await stored_rows(saver, "many") == await stored_rows(saver, "single")
        inbox = await saver.list_inbox(InboxQuery(thread_id="many"))
        assert [(e.interrupt_id, e.deadline) for e in inbox] == [("i11", 11.0)]  # the last one

        other = await saver.acquire_lease("many", "other", 30)  # released with the chain
        assert other.token == lease.token + 1
        with pytest.raises(ThreadBusyError):
            await saver.acquire_lease("single", "other", 30)  # commits alone keep the lease

        # No lease, no release: still one round trip; an empty chain writes nothing.
        free = lambda: saver.commit_many(chain("free", 12))  # noqa: E731
        assert await round_trips(counter, free) == 1
        assert await round_trips(counter, lambda: saver.commit_many([])) == 0
        assert comparable(await saver.load("free")) == comparable(await saver.load("single"))
    finally:
        await saver.destroy()
        await saver.aclose()
        await counter.close()


@pytest.mark.anyio
async def test_a_refused_chain_writes_nothing(pg: PostgresSaver) -> None:
    """A bad link in the middle, a stale stored head, an id already stored or repeated: each is
    the error `commit()` one by one would raise at that commit, and nothing of the chain is
    stored, not even its first commits, its inbox or the lease release."""
    lease = await pg.acquire_lease("t", "w", 30)
    await pg.commit_many(chain("t", 2), lease=lease)
    before = await stored_rows(pg, "t")
    inbox_before = await pg.list_inbox(InboxQuery(thread_id="t"))

    bad_link = chain("t", 5, "002", first=3)
    bad_link[2] = dataclasses.replace(bad_link[2], expected_head="003")  # should be "004"
    with pytest.raises(CheckpointConflictError) as info:
        await pg.commit_many(bad_link, lease=lease, release=True)
    assert (info.value.expected, info.value.actual) == ("003", "004")

    with pytest.raises(CheckpointConflictError) as info:  # the stored head is "002"
        await pg.commit_many(chain("t", 3, "001", first=3), lease=lease, release=True)
    assert (info.value.expected, info.value.actual) == ("001", "002")

    taken = chain("t", 3, "002", first=3)  # the third reuses stored id "001"
    taken[2] = dataclasses.replace(taken[2], record=rec("t", "001", "x", "004"))
    with pytest.raises(CheckpointConflictError, match="'001' already exists") as info:
        await pg.commit_many(taken, lease=lease, release=True)
    assert info.value.expected == info.value.actual == "004"

    repeated = chain("t", 2, "002", first=3)
    repeated.append(Commit(rec("t", "003", "y", "004"), blobs("y"), "004"))  # "003" again
    with pytest.raises(CheckpointConflictError, match="'003' already exists"):
        await pg.commit_many(repeated, lease=lease, release=True)

    assert await stored_rows(pg, "t") == before
    assert await pg.list_inbox(InboxQuery(thread_id="t")) == inbox_before
    loaded = await pg.load("t")
    assert loaded is not None and loaded.record.checkpoint_id == "002"
    with pytest.raises(ThreadBusyError):  # not released
        await pg.acquire_lease("t", "other", 30)
    await pg.commit_many(chain("t", 3, "002", first=3), lease=lease, release=True)  # still fine
    loaded = await pg.load("t")
    assert loaded is not None and loaded.record.checkpoint_id == "005"


@pytest.mark.anyio
async def test_commit_many_with_a_stale_lease_writes_nothing(pg: PostgresSaver) -> None:
    """A lease taken over (expired, then acquired by another owner) fences the whole chain out:
    nothing written, and release=True does not release the new holder's lease."""
    old = await pg.acquire_lease("t", "old", 0.2)
    await pg.commit_many(chain("t", 1), lease=old)
    await asyncio.sleep(0.3)
    new = await pg.acquire_lease("t", "new", 30)
    before = await stored_rows(pg, "t")
    with pytest.raises(LeaseLostError) as lost:
        await pg.commit_many(chain("t", 12, "001", first=2), lease=old, release=True)
    assert (lost.value.token, lost.value.current) == (old.token, new.token)
    assert await stored_rows(pg, "t") == before
    with pytest.raises(ThreadBusyError, match="'new'"):
        await pg.acquire_lease("t", "third", 30)
    await pg.commit_many(chain("t", 2, "001", first=2), lease=new, release=True)
    assert (await pg.acquire_lease("t", "third", 30)).token == new.token + 1


@pytest.mark.anyio
async def test_commit_many_across_namespaces_commits_one_by_one(pg: PostgresSaver) -> None:
    lease = await pg.acquire_lease("t", "w", 30)
    sub_record = dataclasses.replace(rec("t", "001", "s"), checkpoint_ns="sub")
    sub = Commit(sub_record, blobs("s", with_b=True), None)
    await pg.commit_many([*chain("t", 1), sub], lease=lease, release=True)
    assert [(await pg.load("t", ns)) is not None for ns in ("", "sub")] == [True, True]
    assert (await pg.acquire_lease("t", "other", 30)).token == lease.token + 1


@pytest.mark.anyio
async def test_acquire_and_load_is_one_round_trip() -> None:
    """The lease and the head (or the given checkpoint, or a namespace's head) in one round
    trip; a busy thread is a ThreadBusyError naming the holder, in one round trip too."""
    require_service("postgres", POSTGRES_URL)
    counter = RoundTripCounter(POSTGRES_URL)
    url = await counter.start()
    saver = PostgresSaver(url, schema=new_schema(), min_size=1, max_size=1)
    try:
        await saver.setup()
        lease, loaded = await saver.acquire_and_load("t", "w", 30, graph="g")  # prepares
        assert loaded is None and (lease.owner, lease.token, lease.graph) == ("w", 1, "g")
        await saver.commit_many(chain("t", 3), lease=lease)
        sub = dataclasses.replace(rec("t", "s01", "s"), checkpoint_ns="sub")
        await saver.commit(sub, blobs("s", with_b=True), expected_head=None, lease=lease)
        await saver.release_lease(lease)

        got: list[Any] = []

        async def acquire(**kw: Any) -> None:
            got.append(await saver.acquire_and_load("t", "w2", 30, graph="g", **kw))

        assert await round_trips(counter, acquire) == 1
        lease2, head = got[-1]
        assert (lease2.owner, lease2.token, lease2.graph) == ("w2", 2, "g")
        assert lease2.expires_at == pytest.approx(lease.expires_at, abs=5)
        assert comparable(head) == comparable(await saver.load("t"))
        assert head.record.thread_id == "t" and head.record.checkpoint_id == "003"
        assert [(w.task_id, w.idx) for w in head.writes] == [("task", 0), ("task", 1)]

        before = counter.count
        with pytest.raises(ThreadBusyError) as busy:
            await saver.acquire_and_load("t", "w3", 30)
        assert counter.count - before == 1
        assert (busy.value.holder, busy.value.expires_at) == ("w2", lease2.expires_at)
        await saver.release_lease(lease2)

        await acquire(checkpoint_id="002")
        assert comparable(got[-1][1]) == comparable(await saver.load("t", "", "002"))
        await saver.release_lease(got[-1][0])
        await acquire(checkpoint_ns="sub")
        assert comparable(got[-1][1]) == comparable(await saver.load("t", "sub"))
        await saver.release_lease(got[-1][0])
        for kw in ({"checkpoint_id": "999"}, {"checkpoint_ns": "none"}):
            await acquire(**kw)
            assert got[-1][1] is None
            await saver.release_lease(got[-1][0])
        assert [lease.token for lease, _ in got] == [2, 3, 4, 5, 6]
    finally:
        await saver.destroy()
        await saver.aclose()
        await counter.close()


@pytest.mark.anyio
async def test_acquire_and_load_after_a_takeover_wait_sees_the_in_flight_commit(
    pg: PostgresSaver,
) -> None:
    """A take-over that waited for the previous holder's in-flight commit loads that commit:
    the load reads after the lease is taken, not with a snapshot from before the wait."""
    lease = await pg.acquire_lease("t", "old", 0.3)
    await pg.commit_many(chain("t", 1), lease=lease)
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        tx = conn.transaction()
        await tx.start()
        row = await conn.fetchrow(
            pg._q.commit, "t", "", "001", "002", "001", CREATED, '{"a":"2","b":"1"}', b"h",
            "{}", ["a"], ["2"], [b"x"], [], [], [], [], [], lease.token, *[None] * 8,
        )  # fmt: skip
        assert row is not None and row["ok"] and row["lease_ok"]
        await asyncio.sleep(0.4)  # the lease expires, by the server clock
        takeover = asyncio.ensure_future(pg.acquire_and_load("t", "new", 30))
        await asyncio.sleep(0.3)
        assert not takeover.done()  # waiting on the in-flight commit's row lock
        await tx.commit()
        new, loaded = await asyncio.wait_for(takeover, 5)
    finally:
        await conn.close()
    assert new.token == lease.token + 1 and new.owner == "new"
    assert loaded is not None and loaded.record.checkpoint_id == "002"
    assert loaded.blobs == {"a": b"x", "b": b"y" * 50}


# ---------------------------------------------------------------------------- group commit


def batch_counts(saver: PostgresSaver) -> tuple[int, int, int, int]:
    """Batches and requests so far of this loop's acquire_and_load and commit_many batchers."""
    entry = saver._pools[asyncio.get_running_loop()]
    assert entry.acquires is not None and entry.commits is not None
    a, c = entry.acquires, entry.commits
    return a.batches, a.requests, c.batches, c.requests


def counted_since(saver: PostgresSaver, before: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(now - then for now, then in zip(batch_counts(saver), before, strict=True))


async def replace_function(schema: str, name: str, body: str) -> None:
    """Give stored function `name` of `schema` another plpgsql body, same signature: to make
    a batch fail on purpose."""
    rows = await sql(
        "SELECT pg_get_function_identity_arguments(p.oid) AS args,"
        "       pg_get_function_result(p.oid) AS result"
        "  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = $1 AND p.proname = $2",
        schema,
        name,
    )
    await sql(
        f'CREATE OR REPLACE FUNCTION "{schema}".{name}({rows[0]["args"]})'
        f" RETURNS {rows[0]['result']} LANGUAGE plpgsql VOLATILE AS $fn$ BEGIN {body} END $fn$"
    )


async def thread_state(saver: PostgresSaver, thread_id: str) -> tuple[Any, ...]:
    """Everything stored for a thread, comparable across threads and schemas."""
    history = [comparable(h) for h in await saver.history(thread_id)]
    inbox = [
        (e.interrupt_id, e.deadline)
        for e in await saver.list_inbox(InboxQuery(thread_id=thread_id))
    ]
    return history, inbox, await stored_rows(saver, thread_id)


def test_group_commit_options() -> None:
    saver = from_url("postgresql://u@db/app?group_commit=no&batches_in_flight=3&max_batch=10")
    assert (saver.group_commit, saver.batches_in_flight, saver.max_batch) == (False, 3, 10)
    assert saver.warm_connections == 0  # nothing to warm up without group commit
    assert saver.dsn == "postgresql://u@db/app"
    default = from_url("postgresql://u@db/app")
    assert (default.group_commit, default.batches_in_flight, default.max_batch) == (True, 2, 64)
    assert default.warm_connections == 4
    assert from_url("postgresql://u@db/app?warm_connections=9&max_size=3").warm_connections == 3
    for bad in ({"batches_in_flight": 0}, {"max_batch": 0}):
        with pytest.raises(ValueError, match="batches_in_flight >= 1 and max_batch >= 1"):
            from_url("postgresql://u@db/app", **bad)
    with pytest.raises(ValueError, match="warm_connections must be >= 0"):
        from_url("postgresql://u@db/app", warm_connections=-1)


@pytest.mark.anyio
async def test_a_new_pool_warms_up_its_connections_and_leaves_nothing_behind() -> None:
    """A new pool opens `warm_connections` connections and runs every group-commit statement
    once on each, rolled back: no row, lease or notification is left; on a schema that does not
    exist yet (setup=False) the warm-up fails quietly and the saver still works after setup()."""
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    listener = await asyncpg.connect(POSTGRES_URL)
    heard: list[str] = []
    saver = PostgresSaver(POSTGRES_URL, schema=schema, setup=False, warm_connections=3)
    try:
        await listener.add_listener(saver.channels.change, lambda *args: heard.append(args[-1]))
        pool = await saver._pool()  # no schema yet: the warm-up fails, quietly
        assert pool.get_size() >= 1
        await saver.setup()
        await saver.aclose()

        saver = PostgresSaver(POSTGRES_URL, schema=schema, warm_connections=3)
        pool = await saver._pool()
        assert pool.get_size() == 3
        for table in ("leases", "threads", "checkpoints", "blobs", "writes", "inbox"):
            assert (await sql(f'SELECT count(*) FROM "{schema}".{table}'))[0][0] == 0
        await asyncio.sleep(0.1)
        assert heard == []
        lease, loaded = await saver.acquire_and_load("t", "w", 30)
        assert lease.token == 1 and loaded is None
        await saver.commit_many(chain("t", 2), lease=lease, release=True)
        assert (await saver.load("t")).record.checkpoint_id == "002"  # type: ignore[union-attr]
    finally:
        await listener.close()
        await saver.aclose()
        await drop(schema)


@pytest.mark.anyio
@pytest.mark.parametrize("pgbouncer", [False, True], ids=["default", "pgbouncer"])
async def test_concurrent_calls_share_a_round_trip_and_store_what_one_by_one_stores(
    pgbouncer: bool,
) -> None:
    """50 concurrent acquire_and_load calls of 50 threads are one batch (one round trip; two
    with pgbouncer=True), and so are their 50 commit_many calls (chains with inboxes, releasing
    the lease); every thread then reads back as on a saver without group commit, and the next
    50 acquires load the same heads. A lone call is still one round trip."""
    require_service("postgres", POSTGRES_URL)
    counter = RoundTripCounter(POSTGRES_URL)
    url = await counter.start()
    batched = PostgresSaver(url, schema=new_schema(), max_size=2, pgbouncer=pgbouncer)
    single = PostgresSaver(POSTGRES_URL, schema=new_schema(), group_commit=False)
    threads = [f"t{i:02d}" for i in range(50)]
    per_call = 2 if pgbouncer else 1

    async def acquire_all(saver: PostgresSaver) -> list[tuple[Any, Any]]:
        return await asyncio.gather(
            *(saver.acquire_and_load(t, "w", 30, graph="g") for t in threads)
        )

    async def commit_all(saver: PostgresSaver, got: list[tuple[Any, Any]]) -> None:
        await asyncio.gather(*(
            saver.commit_many(chain(t, 3), lease=lease, release=True)
            for t, (lease, _) in zip(threads, got, strict=True)
        ))  # fmt: skip

    try:
        for saver in (batched, single):
            await saver.setup()
            warm, _ = await saver.acquire_and_load("warm", "w", 30)  # prepares both statements
            await saver.commit_many(chain("warm", 2), lease=warm, release=True)
            await asyncio.gather(*(saver.acquire_and_load(t, "w", 30) for t in ("x", "y")))
            await asyncio.gather(*(saver.commit_many(chain(t, 1)) for t in ("x", "y")))
        before, rt = batch_counts(batched), counter.count
        got_batched = await acquire_all(batched)
        assert counter.count - rt == per_call
        assert counted_since(batched, before) == (1, 50, 0, 0)
        got_single = await acquire_all(single)
        assert [(lease.token, loaded) for lease, loaded in got_batched] == [(1, None)] * 50
        assert [(lease.token, loaded) for lease, loaded in got_single] == [(1, None)] * 50
        assert all(lease.graph == "g" and lease.owner == "w" for lease, _ in got_batched)

        before, rt = batch_counts(batched), counter.count
        await commit_all(batched, got_batched)
        assert counter.count - rt == per_call
        assert counted_since(batched, before) == (0, 0, 1, 50)
        await commit_all(single, got_single)
        for t in threads:
            assert await thread_state(batched, t) == await thread_state(single, t)
        assert batched.batch_fallbacks == 0

        again = await acquire_all(batched)  # released with the chains; loads the heads
        for t, (lease, loaded) in zip(threads, again, strict=True):
            assert lease.token == 2
            assert comparable(loaded) == comparable(await single.load(t))
            assert loaded.record.thread_id == t and loaded.record.checkpoint_id == "003"

        before, rt = batch_counts(batched), counter.count
        lease, _ = again[0]
        await batched.commit_many(chain(threads[0], 1, "003", first=4), lease=lease)
        assert counter.count - rt == per_call  # alone: the single-request function
        assert counted_since(batched, before) == (0, 0, 1, 1)
    finally:
        for saver in (batched, single):
            await saver.destroy()
            await saver.aclose()
        await counter.close()


@pytest.mark.anyio
async def test_concurrent_put_writes_and_releases_share_a_round_trip() -> None:
    """30 concurrent put_writes calls (fenced, replacing the inbox; one with a lost lease) are
    one round trip: the lost one gets LeaseLostError and writes nothing, the others store what
    a saver without group commit stores. 30 concurrent release_lease calls (one with a stale
    token, which releases nothing) are one round trip too."""
    require_service("postgres", POSTGRES_URL)
    counter = RoundTripCounter(POSTGRES_URL)
    url = await counter.start()
    batched = PostgresSaver(url, schema=new_schema(), max_size=2)
    single = PostgresSaver(POSTGRES_URL, schema=new_schema(), group_commit=False)
    threads = [f"t{i:02d}" for i in range(30)]

    def put(saver: PostgresSaver, t: str, lease: Any) -> Awaitable[None]:
        writes = [WriteRecord("task", 0, "a", t.encode()), WriteRecord("task", 1, "b", b"v", "p")]
        inbox = [inbox_entry(t, f"i-{t}", deadline=1.0)]
        return saver.put_writes(t, "", "001", writes, lease=lease, inbox=inbox)

    try:
        leases: dict[PostgresSaver, dict[str, Any]] = {}
        for saver in (batched, single):
            await saver.setup()
            leases[saver] = {t: await saver.acquire_lease(t, "w", 30) for t in threads}
            for t in threads:
                await saver.commit_many(chain(t, 1), lease=leases[saver][t])
            for pair in (threads[:1], threads[:2]):  # prepares the statements
                await asyncio.gather(*(put(saver, t, leases[saver][t]) for t in pair))
                await asyncio.gather(*(saver.release_lease(leases[saver][t]) for t in pair))
                for t in pair:
                    leases[saver][t] = await saver.acquire_lease(t, "w", 30)
        stale = dataclasses.replace(leases[batched]["t00"], token=leases[batched]["t00"].token - 1)

        rt = counter.count
        outcomes = await asyncio.gather(
            *(put(batched, t, leases[batched][t]) for t in threads[1:]),
            put(batched, "t00", stale),
            return_exceptions=True,
        )
        assert counter.count - rt == 1
        assert outcomes[:-1] == [None] * 29
        assert isinstance(outcomes[-1], LeaseLostError)
        assert outcomes[-1].current == leases[batched]["t00"].token
        for t in threads[1:]:
            await put(single, t, leases[single][t])
        for t in threads:
            assert await thread_state(batched, t) == await thread_state(single, t)

        rt = counter.count
        await asyncio.gather(
            *(batched.release_lease(leases[batched][t]) for t in threads[1:]),
            batched.release_lease(stale),
        )
        assert counter.count - rt == 1
        with pytest.raises(ThreadBusyError):  # the stale token released nothing
            await batched.acquire_lease("t00", "x", 30)
        for t in threads[1:]:
            assert (await batched.acquire_lease(t, "x", 30)).token == leases[batched][t].token + 1
        assert batched.batch_fallbacks == 0
    finally:
        for saver in (batched, single):
            await saver.destroy()
            await saver.aclose()
        await counter.close()


@pytest.mark.anyio
async def test_each_request_of_a_batch_gets_its_own_outcome(pg: PostgresSaver) -> None:
    """One batch of commit_many calls with a stale expected head, a lost lease, a reused id and
    two chains of one thread (in order: the second conflicts with the first): those callers get
    the errors one-by-one calls would raise, having written nothing, and the others commit.
    One batch of acquire_and_load calls with a busy thread and one thread twice: busy callers
    get ThreadBusyError naming the holder, the others their lease."""
    names = ["ok1", "stale", "lost", "reused", "twice", "ok2"]
    leases = {t: await pg.acquire_lease(t, "w", 30) for t in names}
    for t in names:
        await pg.commit_many(chain(t, 1), lease=leases[t])
    old = await pg.acquire_lease("gone", "old", 0.2)
    await pg.commit_many(chain("gone", 1), lease=old)
    await asyncio.sleep(0.3)
    new = await pg.acquire_lease("gone", "new", 30)  # takes over: `old` is lost
    before_rows = {t: await stored_rows(pg, t) for t in [*names, "gone"]}
    reused = chain("reused", 2, "001", first=2)
    reused[1] = dataclasses.replace(reused[1], record=rec("reused", "001", "x", "002"))

    before = batch_counts(pg)
    outcomes = await asyncio.gather(
        pg.commit_many(chain("ok1", 2, "001", first=2), lease=leases["ok1"], release=True),
        pg.commit_many(chain("stale", 2, "000", first=2), lease=leases["stale"]),
        pg.commit_many(chain("gone", 2, "001", first=2), lease=old, release=True),
        pg.commit_many(reused, lease=leases["reused"]),
        pg.commit_many(chain("twice", 1, "001", first=2), lease=leases["twice"]),
        pg.commit_many(chain("twice", 1, "001", first=5), lease=leases["twice"]),
        pg.commit_many(chain("ok2", 1, "001", first=2), lease=leases["ok2"], release=True),
        return_exceptions=True,
    )
    assert counted_since(pg, before) == (0, 0, 1, 7)
    assert pg.batch_fallbacks == 0
    ok1, stale, lost, dup, twice1, twice2, ok2 = outcomes
    assert ok1 is None and twice1 is None and ok2 is None
    assert isinstance(stale, CheckpointConflictError)
    assert (stale.expected, stale.actual) == ("000", "001")
    assert isinstance(lost, LeaseLostError)
    assert (lost.token, lost.current) == (old.token, new.token)
    assert isinstance(dup, CheckpointConflictError) and "'001' already exists" in str(dup)
    assert isinstance(twice2, CheckpointConflictError)
    assert (twice2.expected, twice2.actual) == ("001", "002")

    for t in ("stale", "gone", "reused"):
        assert await stored_rows(pg, t) == before_rows[t]
    assert (await pg.load("ok1")).record.checkpoint_id == "003"  # type: ignore[union-attr]
    assert (await pg.load("twice")).record.checkpoint_id == "002"  # type: ignore[union-attr]
    assert (await pg.load("gone")).record.checkpoint_id == "001"  # type: ignore[union-attr]

    before = batch_counts(pg)
    got = await asyncio.gather(
        pg.acquire_and_load("ok1", "x", 30),  # released by its chain
        pg.acquire_and_load("stale", "x", 30),  # held by "w"
        pg.acquire_and_load("ok2", "x", 30),
        pg.acquire_and_load("ok2", "y", 30),  # the one before took it
        pg.acquire_and_load("gone", "x", 30),  # held by "new"; old's release did nothing
        pg.acquire_and_load("fresh", "x", 30, checkpoint_ns="sub"),
        return_exceptions=True,
    )
    assert counted_since(pg, before) == (1, 6, 0, 0)
    ok1_lease, ok1_head = got[0]  # type: ignore[misc]
    assert ok1_lease.token == leases["ok1"].token + 1 and ok1_head.record.checkpoint_id == "003"
    assert isinstance(got[1], ThreadBusyError) and got[1].holder == "w"
    ok2_lease, ok2_head = got[2]  # type: ignore[misc]
    assert ok2_lease.owner == "x" and ok2_head.record.checkpoint_id == "002"
    assert isinstance(got[3], ThreadBusyError) and got[3].holder == "x"
    assert got[3].expires_at == ok2_lease.expires_at
    assert isinstance(got[4], ThreadBusyError) and got[4].holder == "new"
    fresh_lease, fresh_head = got[5]  # type: ignore[misc]
    assert fresh_lease.token == 1 and fresh_head is None


@pytest.mark.anyio
async def test_a_batch_that_raises_is_sent_again_one_request_at_a_time(pg: PostgresSaver) -> None:
    """A bad value in one request (a NUL in a checkpoint id: the server refuses the whole
    statement) fails only its caller: the batch is rolled back and its requests go one by one.
    A batch function that raises (here a deadlock, forced) does the same for everyone."""
    leases = {t: await pg.acquire_lease(t, "w", 30) for t in ("a", "b", "c")}
    bad = chain("b", 1)
    bad[0] = dataclasses.replace(bad[0], record=rec("b", "0\x001", "1"))
    outcomes = await asyncio.gather(
        pg.commit_many(chain("a", 2), lease=leases["a"]),
        pg.commit_many(bad, lease=leases["b"]),
        pg.commit_many(chain("c", 2), lease=leases["c"]),
        return_exceptions=True,
    )
    assert pg.batch_fallbacks == 1
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], asyncpg.PostgresError)  # the server's own error, unmapped
    assert await pg.load("b") is None
    assert [(await pg.load(t)).record.checkpoint_id for t in "ac"] == ["002", "002"]  # type: ignore[union-attr]

    await replace_function(
        pg.schema, "hitl_commit_many_batch", "RAISE EXCEPTION USING ERRCODE = '40P01';"
    )
    await replace_function(
        pg.schema, "hitl_acquire_and_load_batch", "RAISE EXCEPTION USING ERRCODE = '40001';"
    )
    await asyncio.gather(*(
        pg.commit_many(chain(t, 1, "002", first=3), lease=leases[t], release=True)
        for t in "ac"
    ))  # fmt: skip
    assert pg.batch_fallbacks == 2
    got = await asyncio.gather(*(pg.acquire_and_load(t, "x", 30) for t in "acd"))
    assert pg.batch_fallbacks == 3
    assert [loaded and loaded.record.checkpoint_id for _, loaded in got] == ["003", "003", None]
    assert [lease.token for lease, _ in got] == [leases["a"].token + 1, leases["c"].token + 1, 1]


@pytest.mark.anyio
async def test_a_batch_whose_connection_breaks_fails_every_caller_as_unavailable(
    pg: PostgresSaver,
) -> None:
    """The batch may have committed before its reply was lost: every caller gets
    StoreUnavailableError (the engine retries and reads the head back), nothing is resent."""
    await replace_function(
        pg.schema, "hitl_commit_many_batch", "PERFORM pg_terminate_backend(pg_backend_pid());"
    )
    outcomes = await asyncio.gather(
        *(pg.commit_many(chain(t, 1)) for t in "abc"), return_exceptions=True
    )
    assert all(isinstance(o, StoreUnavailableError) and o.transient for o in outcomes), outcomes
    assert pg.batch_fallbacks == 0
    assert [await pg.load(t) for t in "abc"] == [None] * 3
    await pg.commit_many(chain("a", 1))  # alone: the single function, on a fresh connection
    assert await pg.load("a") is not None


@pytest.mark.anyio
async def test_two_processes_batching_the_same_threads_never_deadlock() -> None:
    """Two savers (two pools, as two processes) acquire and commit the same 40 threads at once,
    each submitting them in its own shuffled order, over several rounds: batches are sorted by
    thread, so they lock rows in one order and never deadlock (no batch falls back); every
    winner of a lease commits on the head it loaded, and each thread ends with one checkpoint
    per win."""
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    savers = {
        who: PostgresSaver(POSTGRES_URL, schema=schema, max_size=4, batches_in_flight=3)
        for who in "ab"
    }
    threads = [f"t{i:02d}" for i in range(40)]
    wins: dict[str, int] = dict.fromkeys(threads, 0)
    rng = random.Random(7)

    async def work(who: str, rnd: int) -> None:
        saver = savers[who]
        order = rng.sample(threads, len(threads))
        got = await asyncio.gather(
            *(saver.acquire_and_load(t, who, 30) for t in order), return_exceptions=True
        )
        commits = []
        for t, outcome in zip(order, got, strict=True):
            if isinstance(outcome, ThreadBusyError):
                continue
            assert isinstance(outcome, tuple), outcome
            lease, loaded = outcome
            head = loaded.record.checkpoint_id if loaded is not None else None
            cid = f"{rnd:03d}{who}"
            commit = Commit(rec(t, cid, cid, head), blobs(cid, with_b=True), head)
            commits.append(saver.commit_many([commit], lease=lease, release=True))
            wins[t] += 1
        await asyncio.gather(*commits)

    try:
        await savers["a"].setup()
        for rnd in range(1, 7):
            await asyncio.gather(work("a", rnd), work("b", rnd))
        assert [s.batch_fallbacks for s in savers.values()] == [0, 0]
        assert all(wins[t] >= 6 for t in threads)
        for t in threads:
            assert (await stored_rows(savers["a"], t))["checkpoints"] == wins[t]
    finally:
        await savers["a"].destroy()
        for saver in savers.values():
            await saver.aclose()


@pytest.mark.anyio
async def test_racing_chains_on_separate_pools_one_wins_also_for_a_new_namespace() -> None:
    """commit_many chains of separate pools race from the same head - the first checkpoint of a
    namespace too, where no head row exists to lock yet: one winner per round; each loser gets
    the conflict naming the winner's head and leaves nothing behind."""
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    savers = [PostgresSaver(POSTGRES_URL, schema=schema, group_commit=False) for _ in range(4)]
    try:
        await savers[0].setup()
        for ns in ("", "sub"):
            head: str | None = None
            for round_ in range(1, 9):

                async def attempt(
                    k: int, parent: str | None, round_: int = round_, ns: str = ns
                ) -> str:
                    ids = [f"{round_:03d}-{k}-{j}" for j in (1, 2)]
                    commits = [
                        Commit(
                            dataclasses.replace(rec("t", cid, cid, prev), checkpoint_ns=ns),
                            blobs(cid, with_b=prev is None), prev,
                            [WriteRecord("task", 0, "a", cid.encode())],
                        )
                        for cid, prev in zip(ids, [parent, ids[0]], strict=True)
                    ]  # fmt: skip
                    try:
                        await savers[k].commit_many(commits)
                    except CheckpointConflictError as exc:
                        assert exc.expected == parent
                        return f"lost to {exc.actual}"
                    return ids[1]

                results = await asyncio.gather(*(attempt(k, head) for k in range(len(savers))))
                winners = [r for r in results if not r.startswith("lost")]
                assert len(winners) == 1, results
                head = winners[0]
                assert sorted(results) == sorted([head, *[f"lost to {head}"] * 3])
            assert len(await savers[0].history("t", ns)) == 16
        assert (await sql(f'SELECT count(*) FROM "{schema}".checkpoints'))[0][0] == 32
        assert (await sql(f'SELECT count(*) FROM "{schema}".writes'))[0][0] == 32
        assert (await sql(f'SELECT count(*) FROM "{schema}".threads'))[0][0] == 2
    finally:
        for s in savers:
            await s.aclose()
        await drop(schema)


@pytest.mark.anyio
async def test_aclose_waits_for_batches_in_flight() -> None:
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    saver = PostgresSaver(POSTGRES_URL, schema=schema)
    try:
        await saver.setup()
        pending = [asyncio.ensure_future(saver.commit_many(chain(f"t{i}", 2))) for i in range(20)]
        await asyncio.sleep(0)  # all submitted; the first batches are in flight
        await saver.aclose()
        assert await asyncio.gather(*pending) == [None] * 20
    finally:
        check = PostgresSaver(POSTGRES_URL, schema=schema)
        try:
            assert [await check.load(f"t{i}") is not None for i in range(20)] == [True] * 20
        finally:
            await check.destroy()
            await check.aclose()


@pytest.mark.anyio
async def test_aclose_does_not_wait_forever_for_a_stuck_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch blocked on a row lock held elsewhere delays aclose() only by the close timeout;
    its caller then fails with StoreUnavailableError (the pool is closed under it), not with a
    CancelledError it would take for its own cancellation."""
    require_service("postgres", POSTGRES_URL)
    monkeypatch.setattr(pg_pool, "CLOSE_TIMEOUT", 0.5)
    schema = new_schema()
    saver = PostgresSaver(POSTGRES_URL, schema=schema, warm_connections=0)
    blocker = await asyncpg.connect(POSTGRES_URL)
    try:
        await saver.setup()
        lease = await saver.acquire_lease("t", "w", 30)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(
            f'SELECT 1 FROM "{schema}".leases WHERE thread_id = $1 FOR UPDATE', "t"
        )
        stuck = asyncio.ensure_future(saver.commit_many(chain("t", 1), lease=lease, release=True))
        await asyncio.sleep(0.2)
        assert not stuck.done()
        started = asyncio.get_running_loop().time()
        await saver.aclose()
        assert asyncio.get_running_loop().time() - started < 3
        with pytest.raises(StoreUnavailableError):
            await asyncio.wait_for(stuck, 3)
        await tx.rollback()
    finally:
        await blocker.close()
        await saver.aclose()
        await drop(schema)


def test_a_call_made_as_the_last_batch_is_answered_still_goes_out() -> None:
    """The batcher's drain loop stops taking requests before its task is forgotten (a done
    callback, later): a caller that submits again right after its answer must still find one
    (it used to wait forever)."""
    from hitl_async.checkpoint.batching import Batcher

    async def main() -> None:
        async def send(batch: list[int]) -> list[int]:
            await asyncio.sleep(0)
            return batch

        batcher: Batcher[int, int] = Batcher(send, concurrency=1)
        for n in range(5):
            assert await batcher.submit(n) == n  # awaited directly: no extra hop

    asyncio.run(asyncio.wait_for(main(), 5))


@pytest.mark.anyio
async def test_callers_cancelled_mid_call_never_leave_a_connection_busy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Callers cancelled at random points (timeouts, cancel scopes) while the pool is created,
    migrated, warmed up and used, and while the LISTEN connection opens: no other caller ever
    gets asyncpg's `InternalClientError: another operation is in progress`, no connection goes
    back to the pool mid-transaction, and no half-open connection is left to complain. (The
    first use's migration and warm-up, and the LISTEN connection, now run shielded from the
    caller's cancellation.)"""
    import random

    import anyio

    require_service("postgres", POSTGRES_URL)
    errors: list[BaseException] = []
    for round_ in range(4):
        saver = PostgresSaver(POSTGRES_URL, schema=new_schema(), max_size=4)

        async def one(i: int, saver: PostgresSaver = saver) -> None:
            try:
                with anyio.move_on_after(random.random() * 0.02):
                    await saver.load(f"t{i}")
                with anyio.move_on_after(random.random() * 0.004):
                    await saver.wait_for_change(f"t{i}", 1)
                lease = await saver.acquire_lease(f"t{i}", "o", 30)
                with anyio.move_on_after(random.random() * 0.002):
                    await saver.release_lease(lease)
                await saver.list_threads()
            except Exception as exc:
                errors.append(exc)

        with caplog.at_level(logging.WARNING, logger="asyncpg"):
            async with anyio.create_task_group() as tg:
                for i in range(60):
                    tg.start_soon(one, i + 100 * round_)
        await saver.destroy()
        await saver.aclose()
    assert errors == []
    assert not [r for r in caplog.records if "active transaction" in r.getMessage()]


@pytest.mark.anyio
async def test_a_statement_that_returns_no_row_is_a_library_error_naming_the_thread() -> None:
    """mypy --strict found replies indexed unchecked (`Record | None`): a driver function that
    returns no row (its schema's functions replaced by hand, or damaged) was a bare
    `AssertionError` - or, under `python -O`, `TypeError: 'NoneType' object is not
    subscriptable`. Now it is `CorruptRecordError` naming the thread, and nothing is written."""
    require_service("postgres", POSTGRES_URL)
    schema = new_schema()
    saver = PostgresSaver(POSTGRES_URL, schema=schema, group_commit=False, warm_connections=0)
    await saver.setup()
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        args = (
            "text, text, text, text[], integer[], text[], bytea[], text[], bigint, "
            "text[], text[], text[], bytea[], text[], double precision[], bytea[], text[]"
        )
        await conn.execute(f'DROP FUNCTION "{schema}".hitl_put_writes({args})')
        await conn.execute(
            f'CREATE FUNCTION "{schema}".hitl_put_writes({args}) '
            "RETURNS TABLE (lease_ok boolean, lease_current bigint) "
            "LANGUAGE sql AS 'SELECT true, 0::bigint WHERE false'"
        )
        with pytest.raises(CorruptRecordError) as info:
            await saver.put_writes("t-broken", "", "c1", [WriteRecord("k", 0, "a", b"w")])
        assert info.value.thread_id == "t-broken" and "no row" in str(info.value)
    finally:
        await conn.close()
        await saver.destroy()
        await saver.aclose()
