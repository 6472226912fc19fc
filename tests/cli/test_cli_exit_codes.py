"""One exit code per kind of failure, the same on every store, and messages in `hitl` terms:
5 store unavailable (unreachable, no such database, file or directory), 6 store lost (deleted
under a run), 7 corrupt data (a damaged row). Never Python advice, never a raw driver error."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
from apps.services import POSTGRES_URL, REDIS_URL, require_service
from test_cli import APP, TESTS, Store, hitl, ok, ok_json
from test_cli import store as store  # the fixture: a fresh SQLite, PostgreSQL or Redis store

PYTHON_ADVICE = ("stream(None", "config)", "Command(resume")
UNAVAILABLE, LOST, CORRUPT = 5, 6, 7


def failure(code: int, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command that must fail with `code`: one `error: ...` line in hitl terms."""
    done = hitl(*args, cwd=cwd, env=env)
    assert done.returncode == code, (done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and "Traceback" not in done.stderr
    assert not any(advice in line for advice in PYTHON_ADVICE), line
    return line


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_store_unavailable_is_5_on_every_driver(tmp_path: Path) -> None:
    run = ("run", f"{APP}:builder", "-t", "t1", "--input", '{"item": "a", "amount": 1}')
    line = failure(UNAVAILABLE, *run, "--store", "sqlite:///no/such/dir/x.db", cwd=tmp_path)
    assert f"directory {tmp_path}/no/such/dir does not exist" in line
    assert "read-only" not in line
    assert "no SQLite store" in failure(
        UNAVAILABLE, "threads", "--store", "sqlite:///absent.db", cwd=tmp_path
    )
    port = _free_port()
    line = failure(UNAVAILABLE, *run, "--store", f"redis://127.0.0.1:{port}/0", cwd=tmp_path)
    assert "once it is back" in line
    assert f"show --thread t1 --store redis://127.0.0.1:{port}/0" in line  # what to do next
    assert f"run {APP}:builder --thread t1 --store" in line
    line = failure(
        UNAVAILABLE, "threads", "--store", f"postgresql://u@127.0.0.1:{port}/db", cwd=tmp_path
    )
    assert "cannot be reached" in line and "run the command again" in line

    require_service("postgres", POSTGRES_URL)
    parts = urlsplit(POSTGRES_URL)
    missing = f"nodb_{uuid.uuid4().hex[:8]}"
    url = parts._replace(path=f"/{missing}", query="").geturl()
    for args in (("threads",), run):
        line = failure(UNAVAILABLE, *args, "--store", url, cwd=tmp_path)
        assert f"database '{missing}' does not exist" in line
        assert f"createdb -h {parts.hostname}" in line and "fix it, then" in line
    require_service("redis", REDIS_URL)
    redis = urlsplit(REDIS_URL)._replace(path="/99").geturl()
    line = failure(UNAVAILABLE, "inbox", "--store", redis, cwd=tmp_path)
    assert "has no database 99" in line


def _vanish_spec(store: Store, tmp_path: Path) -> str:
    if store.url.startswith("sqlite:"):
        return "sqlite:" + store.url.removeprefix("sqlite:///")
    if store.url.startswith("postgresql:"):
        [schema] = parse_qs(urlsplit(store.url).query)["schema"]
        return f"postgres:{POSTGRES_URL}|{schema}"
    return f"redis:{store.url}|{store.options['prefix']}"


def test_store_lost_under_a_run_is_6_on_every_driver(store: Store, tmp_path: Path) -> None:
    ok(
        "run",
        f"{APP}:builder",
        "-t",
        "before",
        "--input",
        '{"item": "a", "amount": 1}',
        *store.flags,
        cwd=tmp_path,
    )  # fmt: skip  (the store exists and has a thread)
    line = failure(
        LOST,
        "run",
        "apps.cli_faults:vanishing",
        "-t",
        "v",
        "--input",
        '{"n": 0}',
        *store.flags,
        cwd=tmp_path,
        env={"CLI_VANISH": _vanish_spec(store, tmp_path)},
    )
    assert "is lost" in line and "restore it from a backup" in line and "--store" in line


def _submit(store: Store, thread: str) -> str:
    import sys

    sys.path.insert(0, str(TESTS))
    try:
        from apps.cli_app import make_graph
    finally:
        sys.path.remove(str(TESTS))

    async def go() -> str:
        saver = store.connect()
        try:
            graph = make_graph().with_checkpointer(saver)
            handle = await graph.asubmit(
                {"item": "chair", "amount": 80}, {"configurable": {"thread_id": thread}}
            )
            return str(handle.id)
        finally:
            await saver.aclose()

    return anyio.run(go)


async def _damage(store: Store, request_id: str) -> None:
    """Damage a run request's row behind the saver's back, as a hand edit or a bit flip would."""
    if store.url.startswith("sqlite:"):
        conn = sqlite3.connect(store.url.removeprefix("sqlite:///"))
        try:
            conn.execute("UPDATE runs SET payload = 'text' WHERE id = ?", (request_id,))
            conn.commit()
        finally:
            conn.close()
        return
    if store.url.startswith("postgresql:"):
        import asyncpg

        [schema] = parse_qs(urlsplit(store.url).query)["schema"]
        conn2: Any = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn2.execute(
                f"UPDATE \"{schema}\".runs SET status = 'zombie' WHERE id = $1", request_id
            )
        finally:
            await conn2.close()
        return
    saver = store.connect()
    try:
        client = await saver.get_client()
        key = f"{store.options['prefix']}:run:{request_id.encode().hex()}"
        await client.hset(key, "attempts", "many")
    finally:
        await saver.aclose()


def test_corrupt_data_is_7_and_never_hides_the_rest(store: Store, tmp_path: Path) -> None:
    healthy = _submit(store, "fine")
    hurt = _submit(store, "hurt")
    anyio.run(_damage, store, hurt)
    listed = {r["id"]: r for r in ok_json("runs", *store.flags, cwd=tmp_path)}
    assert set(listed) == {healthy, hurt}  # the damaged row is listed, not dropped
    assert listed[hurt]["state"] == "damaged" and listed[hurt]["damaged"]
    assert listed[healthy]["state"] == "queued" and listed[healthy]["damaged"] is None
    assert "DAMAGED" in ok("runs", *store.flags, cwd=tmp_path)
    line = failure(CORRUPT, "runs", "show", hurt, *store.flags, cwd=tmp_path)
    assert "'hurt'" in line and hurt in line and "damaged in the store" in line
    assert ok_json("runs", "show", healthy, *store.flags, cwd=tmp_path)["thread_id"] == "fine"
