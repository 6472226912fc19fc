"""SQLite driver specifics: URLs, pragmas, schema, several connections on one file, group commit.

The protocol itself is covered for every driver by tests/checkpoint/test_conformance.py.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import operator
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import pytest
from apps.services import IN_CI
from typing_extensions import TypedDict

from hitl_async import (
    BlobRecord,
    CheckpointConflictError,
    CheckpointRecord,
    DriverNotFoundError,
    InboxEntry,
    InMemorySaver,
    LeaseLostError,
    RunRequest,
    StateGraph,
    ThreadBusyError,
    WriteRecord,
    connect,
)
from hitl_async.checkpoint.base import Commit
from hitl_async.checkpoint.capabilities import InboxQuery

try:
    from hitl_async_sqlite import SqliteSaver, _coordination, _ops, _schema, from_url, parse_url
except ImportError:  # skip locally, fail under CI
    if IN_CI:
        raise
    pytest.skip(
        "hitl_async_sqlite is not installed: pip install -e drivers/sqlite", allow_module_level=True
    )

pytestmark = pytest.mark.anyio


def rec(thread_id: str, checkpoint_id: str, parent: str | None = None) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns="",
        checkpoint_id=checkpoint_id,
        parent_id=parent,
        created_at="2024-01-01T00:00:00.000000+00:00",
        channel_versions={"a": checkpoint_id},
        header=b"h",
        metadata={},
    )


def blobs(checkpoint_id: str) -> list[BlobRecord]:
    return [BlobRecord("a", checkpoint_id, checkpoint_id.encode())]


def rows(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Query the database file through a separate raw sqlite3 connection."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


class Gate:
    """A job that holds the saver's worker thread until `release` is set, so jobs queue behind."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def job(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        assert self.release.wait(10), "gate never released"


@asynccontextmanager
async def worker_held(saver: SqliteSaver) -> AsyncIterator[None]:
    """While inside, the worker thread is busy: whatever is submitted meanwhile waits in line."""
    gate = Gate()
    async with anyio.create_task_group() as tg:
        tg.start_soon(saver._run, gate.job)
        assert await anyio.to_thread.run_sync(gate.entered.wait, 10)
        try:
            yield
        finally:
            gate.release.set()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cp.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteSaver]:
    saver = from_url(f"sqlite:///{db_path}")
    try:
        yield saver
    finally:
        await saver.aclose()


# ---------------------------------------------------------------------------- URLs and connect()


def test_url_relative_absolute_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_url("sqlite:///rel.db") == (str(tmp_path / "rel.db"), {})
    assert parse_url("sqlite:///sub/dir/x.db")[0] == str(tmp_path / "sub" / "dir" / "x.db")
    assert parse_url("sqlite:////abs/path.db") == ("/abs/path.db", {})
    assert parse_url("sqlite:////abs/my%20file%3F.db")[0] == "/abs/my file?.db"
    for url in ("sqlite:///:memory:", "sqlite://:memory:", "sqlite://", "SQLITE:///:memory:"):
        assert parse_url(url) == (":memory:", {}), url
    assert parse_url("sqlite:///x.db?busy_timeout=5&synchronous=full") == (
        str(tmp_path / "x.db"),
        {"busy_timeout": 5.0, "synchronous": "full"},  # typed (SqliteUrlOptions),
    )
    for bad in ("sqlite://host/x.db", "sqlite:///x.db?bogus=1", "sqlite:///x.db#frag", "x:///a"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_options(tmp_path: Path) -> None:
    saver = from_url(f"sqlite:///{tmp_path}/x.db?busy_timeout=5&synchronous=full")
    assert (saver.busy_timeout, saver.synchronous, saver.journal_mode) == (5.0, "FULL", "WAL")
    saver = from_url(f"sqlite:///{tmp_path}/x.db?busy_timeout=5", busy_timeout=2)
    assert saver.busy_timeout == 2.0  # keyword options win over the query
    assert from_url("sqlite:///:memory:").synchronous == "NORMAL"
    assert from_url("sqlite:///:memory:", journal_mode="delete").synchronous == "FULL"
    for bad in ({"synchronous": "sometimes"}, {"journal_mode": "x; DROP"}, {"busy_timeout": -1}):
        with pytest.raises(ValueError):
            from_url("sqlite:///:memory:", **bad)


def test_connect_finds_sqlite_and_memory(tmp_path: Path) -> None:
    saver = connect(f"sqlite:///{tmp_path}/x.db", busy_timeout=3)
    assert isinstance(saver, SqliteSaver)
    assert saver.busy_timeout == 3.0
    assert isinstance(connect("memory://"), InMemorySaver)
    assert not (tmp_path / "x.db").exists()  # lazy: no I/O before first use


def test_connect_unknown_scheme() -> None:
    with pytest.raises(DriverNotFoundError) as info:
        connect("nope://user:secret@x")
    msg = str(info.value)
    assert "'nope'" in msg
    assert "memory" in msg and "sqlite" in msg  # installed schemes
    assert "pip install hitl-async-postgres" in msg  # what exists
    assert "secret" not in msg  # never echo credentials
    with pytest.raises(DriverNotFoundError):
        connect("just-a-path.db")


def test_connect_missing_driver_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from hitl_async import _connect

    only_sqlite = {k: v for k, v in _connect._entry_points().items() if k == "sqlite"}
    monkeypatch.setattr(_connect, "_entry_points", lambda: only_sqlite)
    for url, package in (
        ("postgresql://u@h/db", "hitl-async-postgres"),
        ("postgres://u@h/db", "hitl-async-postgres"),
        ("rediss://h:6380/0", "hitl-async-redis"),
    ):
        with pytest.raises(DriverNotFoundError, match=f"pip install {package}") as info:
            connect(url)
        assert "Installed schemes: memory, sqlite" in str(info.value)


# ---------------------------------------------------------------------------- connection


async def test_lazy_connect_and_wal(store: SqliteSaver, db_path: Path) -> None:
    assert not db_path.exists()
    await store.setup()
    assert db_path.exists()
    assert rows(db_path, "PRAGMA journal_mode") == [("wal",)]
    sync = await store._run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
    assert sync == 1  # NORMAL
    timeout = await store._run(lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0])
    assert timeout == 30_000


async def test_synchronous_full(db_path: Path) -> None:
    saver = from_url(f"sqlite:///{db_path}", synchronous="FULL", busy_timeout=1.5)
    try:
        assert await saver._run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2
        assert await saver._run(lambda c: c.execute("PRAGMA busy_timeout").fetchone()[0]) == 1500
    finally:
        await saver.aclose()


async def test_setup_idempotent_and_schema(store: SqliteSaver, db_path: Path) -> None:
    await store.setup()
    await store.setup()
    other = from_url(f"sqlite:///{db_path}")
    await other.setup()
    await other.aclose()
    assert [v for (v,) in rows(db_path, "SELECT version FROM schema_version")] == [
        v for v, _ in _schema.MIGRATIONS
    ]
    tables = {n for (n,) in rows(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "threads", "checkpoints", "blobs", "writes"} <= tables
    assert {"leases", "inbox", "runs"} <= tables


async def test_first_use_runs_setup(store: SqliteSaver, db_path: Path) -> None:
    assert await store.load("t") is None  # no explicit setup()
    assert rows(db_path, "SELECT count(*) FROM checkpoints") == [(0,)]


async def test_memory_databases_are_private() -> None:
    one, two = from_url("sqlite:///:memory:"), from_url("sqlite://:memory:")
    try:
        await one.commit(rec("t", "1"), blobs("1"), expected_head=None)
        assert (await one.load("t")) is not None
        assert await two.load("t") is None
    finally:
        await one.aclose()
        await two.aclose()


async def test_closed_saver_refuses_work(store: SqliteSaver) -> None:
    await store.commit(rec("t", "1"), blobs("1"), expected_head=None)
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await store.load("t")


async def test_two_connections_share_the_file(store: SqliteSaver, db_path: Path) -> None:
    other = from_url(f"sqlite:///{db_path}")
    try:
        await store.commit(rec("t", "1"), blobs("1"), expected_head=None)
        seen = await other.load("t")
        assert seen is not None and seen.record.checkpoint_id == "1"
        await other.commit(rec("t", "2", "1"), blobs("2"), expected_head="1")
        with pytest.raises(CheckpointConflictError) as info:
            await store.commit(rec("t", "2b", "1"), blobs("2b"), expected_head="1")
        assert info.value.actual == "2"
        got = await store.load("t")
        assert got is not None and got.record.checkpoint_id == "2"
        assert rows(db_path, "SELECT count(*) FROM blobs WHERE version = '2b'") == [(0,)]
    finally:
        await other.aclose()


async def test_prune_deletes_orphan_blobs_and_writes(store: SqliteSaver, db_path: Path) -> None:
    head = None
    for i in range(1, 5):
        await store.commit(rec("t", str(i), head), blobs(str(i)), expected_head=head)
        head = str(i)
    await store.put_writes("t", "", "1", [WriteRecord("task", 0, "a", b"w")])
    assert await store.prune("t", keep_last=2) == 2
    assert rows(db_path, "SELECT version FROM blobs ORDER BY version") == [("3",), ("4",)]
    assert rows(db_path, "SELECT count(*) FROM writes") == [(0,)]
    await store.destroy()
    for table in ("threads", "checkpoints", "blobs", "writes"):
        assert rows(db_path, f"SELECT count(*) FROM {table}") == [(0,)]


# ---------------------------------------------------------------------------- group commit


async def test_group_commit_batches_and_isolates_conflicts(
    store: SqliteSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.commit(rec("b", "1"), blobs("1"), expected_head=None)
    sizes: list[int] = []
    real = _ops.run_batch

    def spy(conn: sqlite3.Connection, jobs: Sequence[_ops.Job]) -> Any:
        sizes.append(len(jobs))
        return real(conn, jobs)

    monkeypatch.setattr(_ops, "run_batch", spy)
    await store.commit(rec("first", "1"), blobs("1"), expected_head=None)
    assert sizes == [1]  # an idle worker sends a write at once, alone
    async with worker_held(store):
        tasks = [
            asyncio.create_task(store.commit(rec("a", "1"), blobs("1"), expected_head=None)),
            asyncio.create_task(store.commit(rec("b", "2"), blobs("2"), expected_head="wrong")),
            asyncio.create_task(store.commit(rec("c", "1"), blobs("1"), expected_head=None)),
        ]
        await asyncio.sleep(0)  # all three queued behind the held worker
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sizes == [1, 3]  # the three queued went in one transaction
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], CheckpointConflictError)
    assert sorted(await store.list_threads()) == ["a", "b", "c", "first"]
    b = await store.load("b")
    assert b is not None and b.record.checkpoint_id == "1"  # the conflicting one alone rolled back

    sizes.clear()
    await asyncio.gather(
        *(store.commit(rec(f"x{i}", "1"), blobs("1"), expected_head=None) for i in range(100))
    )
    assert sum(sizes) == 100 and len(sizes) < 10

    sizes.clear()  # max_batch bounds a batch; reads queued between writes keep their place
    small = from_url(f"sqlite:///{store.path}", max_batch=2)
    try:
        await small.setup()
        async with worker_held(small):
            writes = [
                asyncio.create_task(small.commit(rec(f"y{i}", "1"), blobs("1"), expected_head=None))
                for i in range(3)
            ]
            read = asyncio.create_task(small.load("y2"))
            more = asyncio.create_task(small.commit(rec("y3", "1"), blobs("1"), expected_head=None))
            await asyncio.sleep(0)
        await asyncio.gather(*writes, more)
        seen = await read
        assert seen is not None and seen.record.checkpoint_id == "1"  # queued after y2's commit
        assert sizes == [2, 1, 1]
    finally:
        await small.aclose()


async def test_batch_failure_fails_every_job(
    store: SqliteSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.setup()

    def broken(conn: sqlite3.Connection, jobs: Sequence[_ops.Job]) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(_ops, "run_batch", broken)
    results = await asyncio.gather(
        *(store.commit(rec(f"t{i}", "1"), blobs("1"), expected_head=None) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    monkeypatch.undo()
    assert await store.list_threads() == []
    await store.commit(rec("t0", "1"), blobs("1"), expected_head=None)  # the saver recovers
    assert await store.list_threads() == ["t0"]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_cancelled_queued_write_is_not_applied(db_path: Path, anyio_backend: str) -> None:
    saver = from_url(f"sqlite:///{db_path}")
    try:
        await saver.setup()
        async with worker_held(saver):
            with anyio.move_on_after(0.05) as scope:  # cancelled while waiting in line
                await saver.commit(rec("lost", "1"), blobs("1"), expected_head=None)
            assert scope.cancelled_caught
        await saver.commit(rec("c", "1"), blobs("1"), expected_head=None)
        assert await saver.list_threads() == ["c"]
    finally:
        await saver.aclose()


# ---------------------------------------------------------------------------- event loops
# One saver serves every loop that uses it: the sync facade's portal loop, the user's
# `asyncio.run()`, the next `asyncio.run()`, other threads' loops, and trio.


def test_one_saver_in_consecutive_asyncio_runs(db_path: Path) -> None:
    saver = from_url(f"sqlite:///{db_path}")

    async def first() -> None:
        await saver.commit(rec("t", "1"), blobs("1"), expected_head=None)

    async def second() -> str | None:
        got = await saver.load("t")
        assert got is not None
        await saver.commit(rec("t", "2", "1"), blobs("2"), expected_head="1")
        await asyncio.gather(
            *(saver.commit(rec(f"x{i}", "1"), blobs("1"), expected_head=None) for i in range(20))
        )
        head = await saver.load("t")
        return head.record.checkpoint_id if head else None

    asyncio.run(first())
    assert asyncio.run(second()) == "2"
    assert len(asyncio.run(saver.list_threads())) == 21
    asyncio.run(saver.aclose())
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(saver.load("t"))


async def test_thread_loop_and_main_loop_at_once(store: SqliteSaver) -> None:
    async def chain(thread_id: str, n: int) -> str | None:
        head: str | None = None
        for i in range(1, n + 1):
            await store.commit(rec(thread_id, str(i), head), blobs(str(i)), expected_head=head)
            head = str(i)
        got = await store.load(thread_id)
        return got.record.checkpoint_id if got else None

    def in_thread() -> list[str | None]:
        async def main() -> list[str | None]:
            return list(await asyncio.gather(*(chain(f"thread-{k}", 30) for k in range(3))))

        return asyncio.run(main())

    results = await asyncio.gather(
        asyncio.to_thread(in_thread), *(chain(f"main-{k}", 30) for k in range(3))
    )
    assert results == [["30", "30", "30"], "30", "30", "30"]
    assert len(await store.list_threads()) == 6


def test_sync_portal_then_asyncio_run(db_path: Path) -> None:
    from hitl_async import _sync

    saver = from_url(f"sqlite:///{db_path}")
    _sync.run(lambda: saver.commit(rec("t", "1"), blobs("1"), expected_head=None))

    async def user() -> None:
        got = await saver.load("t")
        assert got is not None and got.record.checkpoint_id == "1"
        await saver.commit(rec("t", "2", "1"), blobs("2"), expected_head="1")

    asyncio.run(user())
    got = _sync.run(lambda: saver.load("t"))
    assert got is not None and got.record.checkpoint_id == "2"
    _sync.run(lambda: saver.commit(rec("t", "3", "2"), blobs("3"), expected_head="2"))
    asyncio.run(saver.aclose())


class LogState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def test_graph_invoke_then_ainvoke_in_new_loops(db_path: Path) -> None:
    builder = StateGraph(LogState)
    builder.add_node("step", lambda state: {"log": ["x"]})
    builder.set_entry_point("step")
    builder.set_finish_point("step")
    saver = connect(f"sqlite:///{db_path}")
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}

    assert graph.invoke({"log": ["in"]}, config)["log"] == ["in", "x"]  # the portal's loop
    state = asyncio.run(graph.ainvoke({"log": ["again"]}, config))  # the user's loop
    assert state["log"] == ["in", "x", "again", "x"]
    state = asyncio.run(graph.ainvoke({"log": ["more"]}, config))  # a new loop
    assert state["log"] == ["in", "x", "again", "x", "more", "x"]
    assert graph.invoke({"log": ["sync"]}, config)["log"][-2:] == ["sync", "x"]
    asyncio.run(saver.aclose())


def _until_idle(saver: Any) -> None:
    """Wait until the worker has counted its last job done: it wakes the caller just before,
    and a caller that sees it still busy hands its next job over (right, but not what the test
    looks at)."""
    worker = saver._worker
    deadline = time.monotonic() + 30  # a deadlock guard only
    while worker is not None and (worker._inflight or worker._using.locked()):
        assert time.monotonic() < deadline, "the SQLite worker never went idle"
        time.sleep(0.001)


def test_sync_api_runs_statements_in_the_calling_thread(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the sync API the caller's thread, which waits for the store anyway, runs the
    saver's transactions itself while the worker idles; the async API never runs them in the
    caller's thread (the worker does, or the engine thread of an all-sync run)."""
    builder = StateGraph(LogState)
    builder.add_node("step", lambda state: {"log": ["x"]})
    builder.set_entry_point("step")
    builder.set_finish_point("step")
    saver = from_url(f"sqlite:///{db_path}")
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"log": ["warm"]}, config)  # the connection is opened by the worker
    _until_idle(saver)
    ran_in: list[str] = []
    real = _ops.run_batch

    def spy(conn: sqlite3.Connection, jobs: Sequence[_ops.Job]) -> Any:
        ran_in.append(threading.current_thread().name)
        return real(conn, jobs)

    monkeypatch.setattr(_ops, "run_batch", spy)
    assert graph.invoke({"log": ["in"]}, config)["log"][-2:] == ["in", "x"]
    _until_idle(saver)
    me = threading.current_thread().name
    assert ran_in and set(ran_in) == {me}
    ran_in.clear()
    asyncio.run(graph.ainvoke({"log": ["async"]}, config))
    assert ran_in and me not in ran_in
    assert graph.get_state(config).values["log"][-2:] == ["async", "x"]
    asyncio.run(saver.aclose())


def test_sync_api_waits_for_another_connections_lock_on_the_worker(db_path: Path) -> None:
    """Another connection holding the write lock does not fail a sync caller's commit, nor is
    the commit made twice: the caller hands it to the worker, which waits busy_timeout."""
    builder = StateGraph(LogState)
    builder.add_node("step", lambda state: {"log": ["x"]})
    builder.set_entry_point("step")
    builder.set_finish_point("step")
    saver = from_url(f"sqlite:///{db_path}")
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"log": ["warm"]}, config)
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    out: list[Any] = []
    caller = threading.Thread(target=lambda: out.append(graph.invoke({"log": ["in"]}, config)))
    caller.start()
    caller.join(0.3)
    assert caller.is_alive() and not out  # waiting for the lock, not failed
    other.execute("COMMIT")
    other.close()
    caller.join(10)
    assert out and out[0]["log"] == ["warm", "x", "in", "x"]
    assert graph.invoke({"log": ["again"]}, config)["log"][-2:] == ["again", "x"]
    assert len(list(graph.get_state_history(config))) == len(
        rows(db_path, "SELECT checkpoint_id FROM checkpoints WHERE thread_id = 't'")
    )
    asyncio.run(saver.aclose())


def test_caller_loop_gone_mid_job(db_path: Path) -> None:
    """A loop that ends while its job runs (asyncio.run cancels it, then closes the loop) must not
    hurt the worker; a job of that loop still waiting in line is dropped."""
    saver = from_url(f"sqlite:///{db_path}")
    gate = Gate()
    tasks: list[asyncio.Task[Any]] = []

    async def abandon() -> None:
        tasks.append(asyncio.create_task(saver._run(gate.job)))
        assert await asyncio.to_thread(gate.entered.wait, 10)
        lost = saver.commit(rec("lost", "1"), blobs("1"), expected_head=None)
        tasks.append(asyncio.create_task(lost))
        await asyncio.sleep(0)  # queued behind the gate; asyncio.run() cancels both tasks

    asyncio.run(abandon())
    gate.release.set()  # the worker now wakes a closed loop

    async def after() -> list[str]:
        await saver.commit(rec("t", "1"), blobs("1"), expected_head=None)
        return await saver.list_threads()

    assert asyncio.run(after()) == ["t"]
    asyncio.run(saver.aclose())


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_works_under_trio(db_path: Path, anyio_backend: str) -> None:
    saver = from_url(f"sqlite:///{db_path}")
    try:

        async def first(thread_id: str) -> None:
            await saver.commit(rec(thread_id, "1"), blobs("1"), expected_head=None)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(first, f"t{i}")
        assert len(await saver.list_threads()) == 50
        with pytest.raises(CheckpointConflictError):
            await saver.commit(rec("t0", "2", "1"), blobs("2"), expected_head="0")
        got = await saver.load("t7")
        assert got is not None and got.blobs == {"a": b"1"}
    finally:
        await saver.aclose()


def test_unclosed_saver_is_collected_and_its_thread_ends(db_path: Path) -> None:
    saver = from_url(f"sqlite:///{db_path}")
    asyncio.run(saver.commit(rec("t", "1"), blobs("1"), expected_head=None))
    assert saver._worker is not None
    thread = saver._worker.thread
    del saver
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()
    assert not Path(f"{db_path}-wal").exists()  # closed cleanly: the WAL was checkpointed


def test_exit_without_aclose(db_path: Path) -> None:
    """A script that never closes its saver still exits at once, its commits on disk."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from hitl_async import BlobRecord, CheckpointRecord, connect

        saver = connect(sys.argv[1])
        record = CheckpointRecord("t", "", "1", None, "2024-01-01T00:00:00+00:00", {"a": "1"},
                                  b"h", {})
        asyncio.run(saver.commit(record, [BlobRecord("a", "1", b"x")], expected_head=None))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{db_path}"],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert rows(db_path, "SELECT head_id FROM threads") == [("1",)]
    assert not Path(f"{db_path}-wal").exists()  # closed at exit: the WAL was checkpointed


# ---------------------------------------------------------------------------- several processes

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from hitl_async import BlobRecord, CheckpointConflictError, CheckpointRecord, connect

    async def main(url, name, n):
        saver = connect(url, busy_timeout=20)
        done = conflicts = 0
        while done < n:
            head = await saver.load("shared")
            head_id = head.record.checkpoint_id if head else None
            new_id = f"{(int(head_id) if head_id else 0) + 1:08d}"
            record = CheckpointRecord("shared", "", new_id, head_id, "2024-01-01T00:00:00+00:00",
                                      {"a": new_id}, b"h", {"by": name})
            try:
                await saver.commit(record, [BlobRecord("a", new_id, name.encode())],
                                   expected_head=head_id)
                done += 1
            except CheckpointConflictError:
                conflicts += 1
        await saver.aclose()
        print(conflicts)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_several_processes_one_linear_chain(store: SqliteSaver, db_path: Path) -> None:
    await store.setup()
    url, procs, per = f"sqlite:///{db_path}", 3, 25
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            url,
            f"p{k}",
            str(per),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for k in range(procs)
    ]
    for w in workers:
        _, err = await w.communicate()
        assert w.returncode == 0, err.decode()
    history = await store.history("shared")
    assert len(history) == procs * per
    ids = [c.record.checkpoint_id for c in history]
    assert ids == [f"{i:08d}" for i in range(procs * per, 0, -1)]
    for newer, older in itertools.pairwise(history):
        assert newer.record.parent_id == older.record.checkpoint_id  # never forked
        assert newer.blobs["a"] == newer.record.metadata["by"].encode()
    assert {c.record.metadata["by"] for c in history} == {f"p{k}" for k in range(procs)}


# ---------------------------------------------------------------------------- coordination


def entry(thread_id: str, iid: str, created: int, **kw: Any) -> InboxEntry:
    return InboxEntry(
        thread_id=thread_id,
        interrupt_id=iid,
        checkpoint_ns="",
        node="ask",
        value=iid.encode(),
        created_at=f"2026-01-01T00:00:{created // 1000:02d}.{created % 1000:06d}+00:00",
        **kw,
    )


def chain(thread_id: str, n: int, inbox: list[InboxEntry] | None = None) -> list[Commit]:
    """`n` commits of one thread, each on the previous one; `inbox` on the last."""
    ids = [f"{i:08d}" for i in range(1, n + 1)]
    return [
        Commit(
            rec(thread_id, cid, ids[i - 1] if i else None),
            blobs(cid),
            ids[i - 1] if i else None,
            inbox=inbox if i == n - 1 else None,
        )
        for i, cid in enumerate(ids)
    ]


async def test_migrates_a_version_1_database(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
    version, statements = _schema.MIGRATIONS[0]
    for statement in statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (?, 'then')", (version,))
    conn.execute(
        "INSERT INTO threads VALUES ('old', '', '1', 'then')",
    )
    conn.close()
    saver = from_url(f"sqlite:///{db_path}")
    try:
        assert await saver.list_threads() == ["old"]
        assert [v for (v,) in rows(db_path, "SELECT version FROM schema_version")] == [
            v for v, _ in _schema.MIGRATIONS
        ]
        lease = await saver.acquire_lease("old", "w", 30)
        assert lease.token == 1
    finally:
        await saver.aclose()


async def test_inbox_query_plan_uses_only_the_inbox_index(
    store: SqliteSaver, db_path: Path
) -> None:
    for t in range(12):  # 1200 checkpoints of other threads, each chain in one hop
        await store.commit_many(chain(f"busy{t}", 100))
    for t in range(150):
        inbox = [entry(f"w{t:03d}", f"i{t:03d}{k}", (t * 7 + k) % 200) for k in range(2)]
        await store.commit(rec(f"w{t:03d}", "1"), blobs("1"), expected_head=None, inbox=inbox)
    assert rows(db_path, "SELECT count(*) FROM checkpoints") == [(1350,)]

    def plan(**kw: Any) -> str:
        args = {"thread_id": None, "node": None, "graph": None, "due_before": None,
                "after": None, "limit": 100, **kw}  # fmt: skip
        sql, params = _coordination.inbox_query(InboxQuery(**args))
        return " | ".join(r[-1] for r in rows(db_path, f"EXPLAIN QUERY PLAN {sql}", params))

    for shown in (plan(), plan(after=("2026", "w001", "x")), plan(node="ask", graph="g")):
        assert "USING INDEX inbox_order" in shown, shown
        assert "TEMP B-TREE" not in shown, shown  # the index gives the order: no sort
        for table in ("checkpoints", "writes", "blobs", "threads"):
            assert table not in shown, shown
    assert "checkpoints" not in plan(thread_id="w001") and "writes" not in plan(due_before=1.0)

    seen: list[InboxEntry] = []
    after = None
    while page := await store.list_inbox(InboxQuery(limit=64, after=after)):
        seen += page
        after = (page[-1].created_at, page[-1].thread_id, page[-1].interrupt_id)
    keys = [(e.created_at, e.thread_id, e.interrupt_id) for e in seen]
    assert len(seen) == 300 and keys == sorted(keys)


async def test_commit_many_is_one_hop_and_all_or_nothing(
    store: SqliteSaver, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = _ops.run_batch

    def spy(conn: sqlite3.Connection, jobs: Sequence[_ops.Job]) -> Any:
        sizes.append(len(jobs))
        return real(conn, jobs)

    lease = await store.acquire_lease("t", "w", 30)
    monkeypatch.setattr(_ops, "run_batch", spy)
    good = chain("t", 3, inbox=[entry("t", "i1", 1)])
    await store.commit_many(good, lease=lease)
    assert sizes == [1]  # three commits, one job in one transaction
    head = await store.load("t")
    assert head is not None and head.record.checkpoint_id == "00000003"
    assert [e.interrupt_id for e in await store.list_inbox()] == ["i1"]

    def more(expected_third: str) -> list[Commit]:
        ids = ["00000004", "00000005", "00000006"]
        parents = ["00000003", *ids[:2]]
        heads = ["00000003", "00000004", expected_third]
        return [
            Commit(rec("t", c, p), blobs(c), h, inbox=[])
            for c, p, h in zip(ids, parents, heads, strict=True)
        ]

    with pytest.raises(CheckpointConflictError) as conflict:  # the third one conflicts
        await store.commit_many(more("wrong"), lease=lease, release=True)
    assert conflict.value.actual == "00000005"  # as seen after its predecessors
    assert rows(db_path, "SELECT count(*) FROM checkpoints") == [(3,)]  # none of the chain
    assert [e.interrupt_id for e in await store.list_inbox()] == ["i1"]
    with pytest.raises(ThreadBusyError):  # not released either
        await store.acquire_lease("t", "other", 30)

    stale = type(lease)(lease.thread_id, lease.owner, lease.token - 1, lease.expires_at)
    with pytest.raises(LeaseLostError):
        await store.commit_many(more("00000005"), lease=stale)
    assert rows(db_path, "SELECT count(*) FROM checkpoints") == [(3,)]

    await store.commit_many(more("00000005"), lease=lease, release=True)
    assert rows(db_path, "SELECT count(*) FROM checkpoints") == [(6,)]
    assert await store.list_inbox() == []
    assert rows(db_path, "SELECT released FROM leases WHERE thread_id = 't'") == [(1,)]
    assert (await store.acquire_lease("t", "next", 30)).token == lease.token + 1


async def test_commit_many_refuses_a_reused_id_and_keeps_the_head_exact(
    store: SqliteSaver, db_path: Path
) -> None:
    """A chain's commits that follow one another check the head and move it once: a reused id
    (stored before, or twice in the chain) is still the duplicate error at that commit with
    nothing stored, and a stored chain leaves the head at its last checkpoint."""
    await store.commit_many(chain("t", 2))
    taken = [
        Commit(rec("t", "00000003", "00000002"), blobs("00000003"), "00000002"),
        Commit(rec("t", "00000001", "00000003"), blobs("00000001"), "00000003"),
    ]
    with pytest.raises(CheckpointConflictError, match="already exists") as info:
        await store.commit_many(taken)
    assert info.value.expected == info.value.actual == "00000003"
    repeated = [
        Commit(rec("t", "00000003", "00000002"), blobs("00000003"), "00000002"),
        Commit(rec("t", "00000003", "00000003"), blobs("00000003"), "00000003"),
    ]
    with pytest.raises(CheckpointConflictError, match="already exists"):
        await store.commit_many(repeated)
    assert rows(db_path, "SELECT count(*) FROM checkpoints") == [(2,)]
    assert rows(db_path, "SELECT head_id FROM threads WHERE thread_id = 't'") == [("00000002",)]
    other = [  # two threads interleaved: each commit checks its own thread's head
        Commit(rec("t", "00000003", "00000002"), blobs("00000003"), "00000002"),
        Commit(rec("u", "00000001"), blobs("00000001"), None),
        Commit(rec("t", "00000004", "00000003"), blobs("00000004"), "00000003"),
        Commit(rec("u", "00000002", "00000001"), blobs("00000002"), "00000001"),
    ]
    await store.commit_many(other)
    assert rows(db_path, "SELECT thread_id, head_id FROM threads ORDER BY thread_id") == [
        ("t", "00000004"),
        ("u", "00000002"),
    ]
    head = await store.load("t")
    assert head is not None and head.record.checkpoint_id == "00000004"


async def test_acquire_and_load_is_one_transaction(store: SqliteSaver) -> None:
    await store.commit(rec("t", "1"), blobs("1"), expected_head=None)
    lease, loaded = await store.acquire_and_load("t", "w", 30, graph="g")
    assert (lease.token, lease.graph) == (1, "g")
    assert loaded is not None and loaded.record.checkpoint_id == "1"
    with pytest.raises(ThreadBusyError) as busy:
        await store.acquire_and_load("t", "w2", 30)
    assert busy.value.holder == "w" and busy.value.expires_at == lease.expires_at


async def test_delete_thread_clears_inbox_and_keeps_the_lease_row(
    store: SqliteSaver, db_path: Path
) -> None:
    lease = await store.acquire_lease("t", "w", 30)
    await store.commit(
        rec("t", "1"), blobs("1"), expected_head=None, lease=lease, inbox=[entry("t", "i", 1)]
    )
    await store.release_lease(lease)
    await store.delete_thread("t")
    assert await store.list_inbox() == [] and await store.load("t") is None
    assert rows(db_path, "SELECT token, released FROM leases") == [(1, 1)]
    assert (await store.acquire_lease("t", "w", 30)).token == 2  # tokens only grow


async def test_wait_for_change_wakes_on_other_connections_and_own_writes(
    store: SqliteSaver, db_path: Path
) -> None:
    other = from_url(f"sqlite:///{db_path}")
    try:
        await store.setup()
        start = time.monotonic()
        await store.wait_for_change("t", 0.2)  # nothing happens: the whole timeout
        assert 0.19 <= time.monotonic() - start < 2

        async def commit_later(saver: SqliteSaver, thread: str, cid: str, head: Any) -> None:
            await anyio.sleep(0.3)
            await saver.commit(rec(thread, cid, head), blobs(cid), expected_head=head)

        for saver, cid, head in ((other, "1", None), (store, "2", "1")):
            async with anyio.create_task_group() as tg:
                tg.start_soon(commit_later, saver, "t", cid, head)
                start = time.monotonic()
                await store.wait_for_change("t", 10)
                waited = time.monotonic() - start
            assert 0.25 < waited < 2, (saver is other, waited)

        async with anyio.create_task_group() as tg:  # own writes of another thread: no wake
            tg.start_soon(commit_later, store, "u", "1", None)
            start = time.monotonic()
            await store.wait_for_change("t", 0.6)
            assert time.monotonic() - start >= 0.59
    finally:
        await other.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_wait_for_work_wakes_on_enqueue_and_claim_expiry(
    db_path: Path, anyio_backend: str
) -> None:
    saver, other = from_url(f"sqlite:///{db_path}"), from_url(f"sqlite:///{db_path}")
    try:
        await saver.setup()

        async def enqueue_later(by: SqliteSaver, rid: str) -> None:
            await anyio.sleep(0.3)
            await by.enqueue(RunRequest(rid, "q", f"t-{rid}", b"p", created_at=rid))

        for by, rid in ((saver, "1"), (other, "2")):
            async with anyio.create_task_group() as tg:
                tg.start_soon(enqueue_later, by, rid)
                start = time.monotonic()
                await saver.wait_for_work("q", 10)
                assert 0.25 < time.monotonic() - start < 2
            claimed = await saver.claim_request("q", "w", 0.4 if rid == "2" else 30)
            assert claimed is not None and claimed.id == rid
        start = time.monotonic()  # "2"'s claim expires without anybody writing
        await saver.wait_for_work("q", 10)
        assert 0.2 < time.monotonic() - start < 2
        again = await other.claim_request("q", "w2", 30)
        assert again is not None and (again.id, again.attempts) == ("2", 2)
    finally:
        await saver.aclose()
        await other.aclose()


CLAIMER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from hitl_async import ThreadBusyError, connect

    async def main(url, name, at):
        saver = connect(url, busy_timeout=20)
        await saver.setup()
        await asyncio.sleep(max(0.0, at - time.time()))
        try:
            lease = (await saver.acquire_lease("contested", name, 30)).token
        except ThreadBusyError:
            lease = None
        claimed = []
        while (request := await saver.claim_request("q", name, 60)) is not None:
            claimed.append(request.id)
        await saver.aclose()
        print(json.dumps({"lease": lease, "claimed": claimed}))

    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
    """
)


async def test_processes_never_claim_the_same_request_or_lease(
    store: SqliteSaver, db_path: Path
) -> None:
    for i in range(120):
        request = RunRequest(f"r{i:03d}", "q", f"t{i:03d}", b"p", created_at=f"{i:03d}")
        await store.enqueue(request)
    await store.enqueue(RunRequest("same-thread", "q", "t000", b"p", created_at="999"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    at = time.time() + 1.5
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLAIMER,
            f"sqlite:///{db_path}",
            f"p{k}",
            str(at),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for k in range(4)
    ]
    results = []
    for proc in procs:
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out.decode().splitlines()[-1]))
    assert [r["lease"] for r in results if r["lease"] is not None] == [1]
    claimed = [rid for r in results for rid in r["claimed"]]
    assert sorted(claimed) == [f"r{i:03d}" for i in range(120)]  # each exactly once
    held = await store.get_request("same-thread")  # its thread has a live running request
    assert held is not None and held.status == "queued"


_SKEWED_CHILD = """
import asyncio, sys, time
real = time.time
time.time = lambda: real() + 120.0  # this process's wall clock runs 120 s ahead
from hitl_async import ThreadBusyError, connect

async def main() -> None:
    saver = connect(sys.argv[1])
    stolen = 0
    deadline = real() + float(sys.argv[2])
    while real() < deadline:  # while the holder is alive and renewing
        try:
            await saver.acquire_lease("held", "skewed", 1.0)
            stolen += 1
        except ThreadBusyError:
            pass
        await asyncio.sleep(0.05)
    print("stolen", stolen, flush=True)
    for _ in range(200):  # the holder stopped renewing: taken over within about a ttl
        try:
            await saver.acquire_lease("held", "skewed", 1.0)
            print("taken", flush=True)
            break
        except ThreadBusyError:
            await asyncio.sleep(0.05)
    await saver.aclose()

asyncio.run(main())
"""


@pytest.mark.anyio
async def test_a_process_whose_clock_runs_ahead_never_steals_a_live_lease(tmp_path: Path) -> None:
    """Processes sharing a SQLite file have no common clock: one whose wall clock runs 120 s
    ahead sees every lease expired. It takes a lease over only once it watched it unrenewed for
    its ttl on its own monotonic clock, so a live holder (renewing every ttl/3) keeps it, and a
    holder that stopped renewing loses it about a ttl later."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'skew.db'}"
    holder = SqliteSaver(tmp_path / "skew.db")
    lease = await holder.acquire_lease("held", "live", 1.0)
    child = subprocess.Popen(
        [sys.executable, "-c", _SKEWED_CHILD, url, "3.0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        renew_until = time.monotonic() + 3.5
        while time.monotonic() < renew_until:  # alive: renews every third of its ttl
            lease = await holder.renew_lease(lease, 1.0)
            await anyio.sleep(0.3)
        out, _ = await anyio.to_thread.run_sync(child.communicate, None, 30)
    finally:
        if child.poll() is None:
            child.kill()
        await holder.aclose()
    assert "stolen 0" in out, out
    assert "taken" in out, out
