"""PostgreSQL driver specifics: URL and options, migrations, pools across event loops, races, and
the one-round-trip claims (measured with a counting TCP proxy in front of the server).

The shared protocol behaviour is covered by tests/checkpoint/test_conformance.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import IN_CI, POSTGRES_URL, require_service

from hitl_async import (
    BlobRecord,
    CheckpointConflictError,
    CheckpointRecord,
    SerializationError,
    WriteRecord,
)

try:
    import asyncpg
    from hitl_async_postgres import LATEST_VERSION, MIGRATIONS, PostgresSaver, from_url
    from hitl_async_postgres._schema import migrate
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
    assert default.schema == "public" and default.auto_setup is True
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
    with pytest.raises(ValueError, match=r"thread_id 'a\\x00b' contains a NUL"):
        await saver.commit(rec("a\x00b", "1", "1"), blobs("1"), expected_head=None)
    with pytest.raises(ValueError, match="thread_id"):
        await saver.load("a\x00b")
    with pytest.raises(ValueError, match="thread_id"):
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
    """Two `asyncio.run` calls: the second loop gets a pool of its own; the first pool is closed
    when its loop shuts down."""
    require_service("postgres", POSTGRES_URL)
    saver = PostgresSaver(POSTGRES_URL, schema=new_schema(), min_size=2)

    async def first() -> None:
        await saver.commit(rec("t", "1", "1"), blobs("1", with_b=True), expected_head=None)

    async def second() -> int:
        await saver.commit(rec("t", "2", "2", "1"), blobs("2"), expected_head="1")
        got = await saver.load("t")
        assert got is not None and got.record.checkpoint_id == "2"
        assert dict(got.blobs) == {"a": b"x" * 50, "b": b"y" * 50}
        return len(saver._pools)

    async def finish() -> None:
        await saver.destroy()
        await saver.aclose()

    asyncio.run(first())
    assert saver._pools == {}  # its keeper closed the pool as the loop shut down
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
