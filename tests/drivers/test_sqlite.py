"""SQLite driver specifics: URLs, pragmas, schema, several connections on one file, group commit.

The protocol itself is covered for every driver by tests/checkpoint/test_conformance.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hitl_async import (
    BlobRecord,
    CheckpointConflictError,
    CheckpointRecord,
    DriverNotFoundError,
    InMemorySaver,
    WriteRecord,
    connect,
)

try:
    from hitl_async_sqlite import SqliteSaver, _ops, from_url, parse_url
except ImportError:  # like conftest.require_package: skip locally, fail under CI
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
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
        {"busy_timeout": "5", "synchronous": "full"},
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


def test_connect_missing_postgres_driver() -> None:
    if importlib.util.find_spec("hitl_async_postgres") is not None:
        pytest.skip("hitl-async-postgres is installed; see test_connect_missing_driver_hint")
    with pytest.raises(DriverNotFoundError, match="pip install hitl-async-postgres"):
        connect("postgresql://u@localhost/db")


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
        _ops.SCHEMA_VERSION
    ]
    tables = {n for (n,) in rows(db_path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "threads", "checkpoints", "blobs", "writes"} <= tables


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
    results = await asyncio.gather(
        store.commit(rec("first", "1"), blobs("1"), expected_head=None),  # sent at once, alone
        store.commit(rec("a", "1"), blobs("1"), expected_head=None),
        store.commit(rec("b", "2"), blobs("2"), expected_head="wrong"),  # conflicts
        store.commit(rec("c", "1"), blobs("1"), expected_head=None),
        return_exceptions=True,
    )
    assert sizes == [1, 3]  # the three queued behind the first went in one transaction
    assert results[0] is None and results[1] is None and results[3] is None
    assert isinstance(results[2], CheckpointConflictError)
    assert sorted(await store.list_threads()) == ["a", "b", "c", "first"]
    b = await store.load("b")
    assert b is not None and b.record.checkpoint_id == "1"  # the conflicting one alone rolled back

    sizes.clear()
    await asyncio.gather(
        *(store.commit(rec(f"x{i}", "1"), blobs("1"), expected_head=None) for i in range(100))
    )
    assert sum(sizes) == 100 and len(sizes) < 10


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


async def test_cancelled_queued_write_is_not_applied(store: SqliteSaver) -> None:
    await store.setup()
    first = asyncio.create_task(store.commit(rec("a", "1"), blobs("1"), expected_head=None))
    queued = asyncio.create_task(store.commit(rec("b", "1"), blobs("1"), expected_head=None))
    await asyncio.sleep(0)  # `first` is on the thread, `queued` waits behind it
    queued.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await queued
    await store.commit(rec("c", "1"), blobs("1"), expected_head=None)
    assert sorted(await store.list_threads()) == ["a", "c"]


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
