"""Fault injection on real servers and processes. Every fault ends in a transparent retry that
completes correctly, or in a clear `StoreUnavailableError` after which the thread resumes; the
thread's last committed checkpoint is always intact (a linear parent chain, the right final
state) and nothing is half-written.

- PostgreSQL: the saver's backends killed (`pg_terminate_backend` on its `application_name`)
  between steps, and while its commit waits for a row lock; the reply of a commit lost after the
  server applied it; a restart, short (retried) and longer than the retries (a clear error, then
  resume). Restarts and lost replies go through a TCP proxy in front of the real server, so other
  clients of the server are never touched.
- Redis: the same with `CLIENT KILL` of the saver's named clients (a Lua script cannot be caught
  mid-run, so there is no mid-operation kill).
- SQLite: another process holding the write lock (`BEGIN EXCLUSIVE`) briefly, and past the
  retries; a read-only file system; a full disk (as root: a small tmpfs remounted read-only or
  filled up; otherwise chmod and `PRAGMA max_page_count`).
- sqlite, postgres, redis: a worker process SIGKILLed between a node's side effect and its
  commit (durability "sync"), after a parallel sibling's pending write was stored ("sync"), and
  while the next node of a queued run runs (a `Worker`: durability "async"); another worker
  recovers the thread. Only a step whose commit (or pending write) was stored is never redone.

Figures go to the junit report through `record_property`: runs, faults injected, store retries
(engine retries of a commit or pending write), reconciled (retried commits found already
stored), failed runs (ended in `StoreUnavailableError`, then resumed), threads lost, duplicate
side effects (extra executions of a node on a thread).

The file is also the worker process of the SIGKILL scenarios:
`python test_faults.py STORE_URL OPTIONS_JSON GRAPH MODE THREAD` (tests/ on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service, unavailable
from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, StoreUnavailableError, Worker, connect

pytestmark = pytest.mark.anyio

TESTS = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0  # bound of every wait: a hang fails the test instead of blocking the suite
LEASE_TTL = 3.0  # in-process runs; a run whose lease release failed is resumed after it lapses
KILL_LEASE_TTL = 1.0  # worker processes: the recovery waits for the killed worker's lease
RETRIES = 3  # the engine's retries of a transient StoreUnavailableError (_outbox.RETRY_DELAYS)
PAYLOAD = 64 * 1024  # `work` writes this much, so its commit needs new pages (max_page_count)


# -- figures ---------------------------------------------------------------------------------


@pytest.fixture
def record_property(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """pytest's `record_property` without its warning under the default junit family (as in
    test_load.py): the figures land in the junit XML as `<property>` elements."""

    def record(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))

    return record


@pytest.fixture
def engine_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="hitl_async.run")
    return caplog


@dataclass
class Figures:
    scenario: str
    driver: str
    runs: int = 0
    faults: int = 0
    failed: int = 0
    lost: set[str] = field(default_factory=set)
    effects: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.effects.values() if n > 1)

    def record(
        self, record: Callable[[str, object], None], log: pytest.LogCaptureFixture | None = None
    ) -> None:
        record("scenario", self.scenario)
        record("driver", self.driver)
        record("runs", self.runs)
        record("faults_injected", self.faults)
        if log is not None:
            record("store_retries", retries(log))
            record("reconciled", reconciled(log))
        record("failed_runs", self.failed)
        record("threads_lost", len(self.lost))
        record("duplicate_side_effects", self.duplicates)


def retries(log: pytest.LogCaptureFixture) -> int:
    return sum(" retry " in r.getMessage() for r in log.records if r.name == "hitl_async.run")


def reconciled(log: pytest.LogCaptureFixture) -> int:
    return sum(
        "already stored" in r.getMessage() for r in log.records if r.name == "hitl_async.run"
    )


# -- the in-process graph: prepare -> work (waits at a gate) -> act ------------------------------


class Flow(TypedDict, total=False):
    request: str
    prepared: str
    worked: str
    payload: str
    done: str


def expected(thread: str) -> dict[str, Any]:
    return {
        "request": thread,
        "prepared": f"p:{thread}",
        "worked": f"w:{thread}",
        "payload": "x" * PAYLOAD,
        "done": f"{thread}:done",
    }


class Gates:
    """The `work` node of an armed thread waits at its gate, so the test can break the store
    while the run is in flight, then let it go on to its next store write."""

    def __init__(self) -> None:
        self.entered: dict[str, anyio.Event] = {}
        self.gates: dict[str, anyio.Event] = {}
        self.armed: set[str] = set()

    def arm(self, thread: str) -> None:
        self.entered[thread] = anyio.Event()
        self.gates[thread] = anyio.Event()
        self.armed.add(thread)

    def open(self, thread: str) -> None:
        self.gates[thread].set()

    async def wait_at(self, thread: str) -> None:
        if thread in self.armed:  # only the first time: not when the thread is resumed
            self.armed.discard(thread)
            self.entered[thread].set()
            await self.gates[thread].wait()


def thread_of(config: dict[str, Any]) -> str:
    return str(config["configurable"]["thread_id"])


def flow_graph(saver: Any, effects: Counter[tuple[str, str]], gates: Gates) -> Any:
    """prepare (side effect) -> work (side effect, then the gate) -> act (side effect)."""

    async def prepare(state: Flow, config: dict[str, Any]) -> dict[str, Any]:
        effects[thread_of(config), "prepare"] += 1
        return {"prepared": f"p:{state['request']}"}

    async def work(state: Flow, config: dict[str, Any]) -> dict[str, Any]:
        effects[thread_of(config), "work"] += 1
        await gates.wait_at(thread_of(config))
        return {"worked": f"w:{state['request']}", "payload": "x" * PAYLOAD}

    async def act(state: Flow, config: dict[str, Any]) -> dict[str, Any]:
        effects[thread_of(config), "act"] += 1
        return {"done": f"{state['request']}:done"}

    b = StateGraph(Flow)
    b.add_node("prepare", prepare)
    b.add_node("work", work)
    b.add_node("act", act)
    b.add_edge(START, "prepare")
    b.add_edge("prepare", "work")
    b.add_edge("work", "act")
    b.add_edge("act", END)
    return b.compile(checkpointer=saver, name=f"faults-{uuid.uuid4().hex[:8]}", lease_ttl=LEASE_TTL)


Inject = Callable[[Callable[[], None]], Awaitable[None]]


async def faulted_run(
    graph: Any,
    gates: Gates,
    figures: Figures,
    thread: str,
    inject: Inject,
    after: Callable[[], Awaitable[None]] | None = None,
) -> StoreUnavailableError | None:
    """Run `thread` (durability "sync"); while `work` waits at its gate, `inject(open_gate)`
    breaks the store and opens the gate. The run completes, or fails with
    `StoreUnavailableError` - its head must then be the last commit before `work`'s step - and
    after `after()` repaired the store the thread is resumed (waiting for the failed run's lease
    if its release failed too). Returns the error, if any."""
    cfg = {"configurable": {"thread_id": thread}}
    gates.arm(thread)
    failure: list[StoreUnavailableError] = []

    async def run() -> None:
        try:
            await graph.ainvoke({"request": thread}, cfg, durability="sync")
        except StoreUnavailableError as exc:
            failure.append(exc)

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await gates.entered[thread].wait()
            await inject(lambda: gates.open(thread))
        if after is not None:
            await after()
        figures.runs += 1
        figures.faults += 1
        if failure:
            figures.failed += 1
            # Nothing of the failed step is stored: the head is the last commit before it.
            head = await graph.aget_state(cfg)
            if head.next != ("work",) or "worked" in head.values:
                figures.lost.add(thread)
            await graph.ainvoke(None, cfg, wait=LEASE_TTL * 3)
            figures.runs += 1
    return failure[0] if failure else None


async def problems(graph: Any, thread: str, values: dict[str, Any]) -> list[str]:
    """What is wrong with the thread (nothing: []): its final values, nothing left to run, and
    a linear history from the head down to the first checkpoint."""
    cfg = {"configurable": {"thread_id": thread}}
    found = []
    snapshot = await graph.aget_state(cfg)
    if snapshot.values != values:
        found.append(f"values {sorted(snapshot.values)} differ from {sorted(values)}")
    if snapshot.next or snapshot.interrupts:
        found.append(f"still pending: {snapshot.next}")
    history = [s async for s in graph.aget_state_history(cfg)]
    ids = [s.config["configurable"]["checkpoint_id"] for s in history]
    if not history or ids[0] != snapshot.config["configurable"]["checkpoint_id"]:
        found.append("the history does not start at the head")
    if len(set(ids)) != len(ids):
        found.append("a checkpoint id appears twice")
    for newer, older in itertools.pairwise(history):
        parent = (
            newer.parent_config["configurable"]["checkpoint_id"] if newer.parent_config else None
        )
        if parent != older.config["configurable"]["checkpoint_id"]:
            found.append(f"history forked below {newer.config['configurable']['checkpoint_id']}")
    if history and history[-1].parent_config is not None:
        found.append("the oldest checkpoint has a parent")
    return found


async def check_flow(graph: Any, figures: Figures, threads: list[str]) -> None:
    for thread in threads:
        if await problems(graph, thread, expected(thread)):
            figures.lost.add(thread)


def assert_flow(figures: Figures, threads: list[str], failed: set[str]) -> None:
    """No thread lost; prepare and act ran once; work once, or twice on a thread whose run
    failed (its step was never stored, so it runs again on resume)."""
    assert not figures.lost, f"threads lost: {sorted(figures.lost)}"
    for thread in threads:
        assert figures.effects[thread, "prepare"] == 1, thread
        assert figures.effects[thread, "act"] == 1, thread
        allowed = {1, 2} if thread in failed else {1}
        assert figures.effects[thread, "work"] in allowed, (thread, figures.effects)


def chain(exc: BaseException | None) -> list[BaseException]:
    """`exc` and every exception it was raised from or while handling."""
    out: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is not None and e not in out:
            out.append(e)
            todo += [e.__cause__, e.__context__]
    return out


# -- PostgreSQL and Redis: servers, tags, a proxy ------------------------------------------------


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), *params.items()])
    return urlunsplit(parts._replace(query=query))


class Proxy:
    """A TCP proxy in front of a real server, so a test can break the network as a restart or
    a lost packet would without touching the server's other clients.

    `stop()` drops every connection and refuses new ones until `start()` (a restart, as clients
    see it); `lose_next_reply()` lets the next request through and swallows its reply, dropping
    that connection (the server applied the request; the client never hears back)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 0)
        self.port = 0
        self.replies_lost = 0
        self._lose = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    def lose_next_reply(self) -> None:
        self._lose = True

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        pair = (writer, up_writer)
        for coro in (
            self._pipe(reader, up_writer, pair, False),
            self._pipe(up_reader, writer, pair, True),
        ):
            task = asyncio.ensure_future(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        replies: bool,
    ) -> None:
        try:
            while data := await src.read(1 << 16):
                if replies and self._lose:
                    self._lose = False
                    self.replies_lost += 1
                    break
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in pair:
                writer.transport.abort()
                self._writers.discard(writer)


class Server:
    """A real PostgreSQL or Redis server, a fresh schema / key prefix on it, and savers whose
    connections carry a tag (`application_name` / client name), so the test kills only its own
    connections."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.tag = f"hitl-faults-{uuid.uuid4().hex[:8]}"
        if kind == "postgres":
            self.url = POSTGRES_URL
            self.options: dict[str, Any] = {"schema": f"t_{uuid.uuid4().hex[:12]}"}
        else:
            self.url = REDIS_URL
            self.options = {"prefix": f"t{uuid.uuid4().hex[:12]}"}
        self.savers: list[Any] = []
        self.proxies: list[Proxy] = []

    def saver(self, url: str | None = None, **extra: Any) -> Any:
        """A saver tagged with this test's tag (through `url`, a proxy's, if given)."""
        url = url or self.url
        if self.kind == "postgres":
            saver = connect(with_query(url, application_name=self.tag), **self.options, **extra)
        else:
            saver = connect(url, **self.options, client_name=self.tag, **extra)
        self.savers.append(saver)
        return saver

    async def proxy(self) -> Proxy:
        proxy = Proxy(self.url)
        await proxy.start()
        self.proxies.append(proxy)
        return proxy

    async def kill(self) -> int:
        """Kill the tagged connections on the server side; returns how many."""
        if self.kind == "postgres":
            import asyncpg

            admin = await asyncpg.connect(self.url)
            try:
                return int(
                    await admin.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        self.tag,
                    )
                )
            finally:
                await admin.close()
        from redis.asyncio import Redis

        admin = Redis.from_url(self.url, decode_responses=True)
        try:
            listing = await admin.execute_command("CLIENT", "LIST")
            ids = [
                dict(kv.split("=", 1) for kv in line.split() if "=" in kv)["id"]
                for line in listing.splitlines()
                if f" name={self.tag} " in f" {line} "
            ]
            for client_id in ids:
                await admin.execute_command("CLIENT", "KILL", "ID", client_id)
            return len(ids)
        finally:
            await admin.aclose()

    async def close(self) -> None:
        for saver in self.savers:
            await saver.aclose()
        for proxy in self.proxies:
            await proxy.stop()
        cleaner = connect(self.url, **self.options)
        try:
            await cleaner.destroy()
        finally:
            await cleaner.aclose()


@pytest.fixture(params=["postgres", "redis"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    kind = request.param
    if kind == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
    else:
        require_package("hitl_async_redis", "drivers/redis")
        require_service("redis", REDIS_URL)
    server = Server(kind)
    try:
        yield server
    finally:
        await server.close()


KILL_RUNS = 5


async def test_connections_killed_between_steps_are_retried(
    server: Server, record_property: Callable[[str, object], None], engine_log: Any
) -> None:
    """The server kills the saver's connections while a run waits in a node; its next commit
    meets the dead connection and is retried on a new one (or fails clearly and resumes)."""
    figures = Figures("connections killed between steps", server.kind)
    gates = Gates()
    graph = flow_graph(server.saver(), figures.effects, gates)
    threads = [f"kill-{i}" for i in range(KILL_RUNS)]
    failed = set()
    killed = 0

    for thread in threads:

        async def inject(open_gate: Callable[[], None]) -> None:
            nonlocal killed
            killed += await server.kill()
            open_gate()

        if await faulted_run(graph, gates, figures, thread, inject) is not None:
            failed.add(thread)
    await check_flow(graph, figures, threads)
    figures.record(record_property, engine_log)
    record_property("connections_killed", killed)
    assert killed >= KILL_RUNS
    assert_flow(figures, threads, failed)


async def test_postgres_backend_killed_while_its_commit_waits(
    record_property: Callable[[str, object], None], engine_log: Any
) -> None:
    """The backend running the saver's commit is terminated mid-statement (the commit waits
    for a row lock the test holds): nothing of it is stored, and the retry stores it."""
    require_package("hitl_async_postgres", "drivers/postgres")
    require_service("postgres", POSTGRES_URL)
    import asyncpg

    server = Server("postgres")
    figures = Figures("backend killed mid-commit", "postgres")
    gates = Gates()
    graph = flow_graph(server.saver(), figures.effects, gates)
    threads = [f"mid-{i}" for i in range(3)]
    schema = server.options["schema"]
    admin = await asyncpg.connect(server.url)
    try:
        for thread in threads:

            async def inject(open_gate: Callable[[], None], thread: str = thread) -> None:
                tx = admin.transaction()
                await tx.start()
                try:
                    await admin.fetch(
                        f'SELECT 1 FROM "{schema}".threads WHERE thread_id = $1 FOR UPDATE',
                        thread,
                    )
                    open_gate()
                    while not await admin.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                        "AND wait_event_type = 'Lock'",
                        server.tag,
                    ):
                        await anyio.sleep(0.01)
                    await admin.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = $1 AND wait_event_type = 'Lock'",
                        server.tag,
                    )
                finally:
                    await tx.rollback()

            await faulted_run(graph, gates, figures, thread, inject)
        await check_flow(graph, figures, threads)
    finally:
        await admin.close()
        await server.close()
    figures.record(record_property, engine_log)
    assert retries(engine_log) >= len(threads)
    assert figures.failed == 0
    assert_flow(figures, threads, set())


async def test_reply_lost_after_the_commit_was_applied(
    server: Server, record_property: Callable[[str, object], None], engine_log: Any
) -> None:
    """The server applies a commit but its reply never arrives (the connection drops): the
    retry conflicts with the commit already stored, the engine reads the head back, finds its
    own checkpoint and goes on - no fork, no duplicate checkpoint, no error."""
    figures = Figures("commit applied, reply lost", server.kind)
    proxy = await server.proxy()
    # One pooled connection: its statements are prepared by the earlier commits, so the commit
    # is one request and one reply.
    extra = {"min_size": 1, "max_size": 1} if server.kind == "postgres" else {}
    gates = Gates()
    graph = flow_graph(server.saver(proxy.url(server.url), **extra), figures.effects, gates)
    threads = [f"lost-{i}" for i in range(3)]

    async def inject(open_gate: Callable[[], None]) -> None:
        proxy.lose_next_reply()
        open_gate()

    for thread in threads:
        await faulted_run(graph, gates, figures, thread, inject)
    await check_flow(graph, figures, threads)
    figures.record(record_property, engine_log)
    record_property("replies_lost", proxy.replies_lost)
    assert proxy.replies_lost == len(threads)
    assert reconciled(engine_log) == len(threads)
    assert figures.failed == 0
    assert_flow(figures, threads, set())


async def test_server_restart_is_retried(
    server: Server, record_property: Callable[[str, object], None], engine_log: Any
) -> None:
    """A short restart (every connection dropped, new ones refused for a moment): the commit
    is retried until the server is back."""
    figures = Figures("server restart, short", server.kind)
    proxy = await server.proxy()
    gates = Gates()
    graph = flow_graph(server.saver(proxy.url(server.url)), figures.effects, gates)
    threads = [f"restart-{i}" for i in range(3)]
    failed = set()

    async def inject(open_gate: Callable[[], None]) -> None:
        await proxy.stop()
        open_gate()
        await anyio.sleep(0.1)
        await proxy.start()

    for thread in threads:
        if await faulted_run(graph, gates, figures, thread, inject) is not None:
            failed.add(thread)
    await check_flow(graph, figures, threads)
    figures.record(record_property, engine_log)
    assert retries(engine_log) >= 1
    assert_flow(figures, threads, failed)


async def test_server_down_past_the_retries_fails_clearly_then_resumes(
    server: Server, record_property: Callable[[str, object], None], engine_log: Any
) -> None:
    """The server stays down until the run gives up: `StoreUnavailableError` after the
    retries, nothing half-written; once it is back, the thread resumes from its last commit."""
    figures = Figures("server down past the retries", server.kind)
    proxy = await server.proxy()
    gates = Gates()
    graph = flow_graph(server.saver(proxy.url(server.url)), figures.effects, gates)
    thread = "outage"

    async def inject(open_gate: Callable[[], None]) -> None:
        await proxy.stop()
        open_gate()

    error = await faulted_run(graph, gates, figures, thread, inject, after=proxy.start)
    await check_flow(graph, figures, [thread])
    figures.record(record_property, engine_log)
    assert isinstance(error, StoreUnavailableError) and error.transient
    assert any(getattr(e, "attempts", 0) == RETRIES + 1 for e in chain(error)), chain(error)
    assert "unavailable" in str(error)
    assert {"postgres": "PostgreSQL", "redis": "Redis"}[server.kind] in str(error)
    assert_flow(figures, [thread], {thread})


# -- SQLite: a lock held by another process, a read-only file system, a full disk ----------------

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class Locker:
    """Another process holding the SQLite file's write lock until `release()`."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    async def locked(self) -> None:
        assert self.proc.stdout is not None
        line = await anyio.to_thread.run_sync(self.proc.stdout.readline)
        assert line.strip() == "locked"

    async def release(self) -> None:
        if self.proc.returncode is None:
            await anyio.to_thread.run_sync(lambda: self.proc.communicate("\n", timeout=TIMEOUT))


def sqlite_saver(path: Path, **options: Any) -> Any:
    require_package("hitl_async_sqlite", "drivers/sqlite")
    return connect(f"sqlite:///{path}", **options)


async def test_sqlite_locked_by_another_process(
    tmp_path: Path, record_property: Callable[[str, object], None], engine_log: Any
) -> None:
    """Another process holds the write lock: briefly (the commit's retries outlast it) and
    until the run gives up (`StoreUnavailableError` naming the file and the lock; the thread
    resumes once the lock is gone)."""
    path = tmp_path / "locked.db"
    figures = Figures("file locked by another process", "sqlite")
    gates = Gates()
    saver = sqlite_saver(path, busy_timeout=0.1)
    graph = flow_graph(saver, figures.effects, gates)
    lockers: list[Locker] = []
    try:

        async def briefly(open_gate: Callable[[], None]) -> None:
            locker = Locker(path)
            lockers.append(locker)
            await locker.locked()
            open_gate()
            await anyio.sleep(0.3)
            await locker.release()

        brief = ["brief-0", "brief-1"]
        failed = set()
        for thread in brief:
            if await faulted_run(graph, gates, figures, thread, briefly) is not None:
                failed.add(thread)
        brief_retries = retries(engine_log)

        async def until_failed(open_gate: Callable[[], None]) -> None:
            locker = Locker(path)
            lockers.append(locker)
            await locker.locked()
            open_gate()

        async def unlock() -> None:
            await lockers[-1].release()

        error = await faulted_run(graph, gates, figures, "held", until_failed, after=unlock)
        await check_flow(graph, figures, [*brief, "held"])
    finally:
        for locker in lockers:
            await locker.release()
        await saver.aclose()
    figures.record(record_property, engine_log)
    assert brief_retries >= 1
    assert isinstance(error, StoreUnavailableError) and error.transient
    assert str(path) in str(error) and "locked" in str(error)
    assert any(getattr(e, "attempts", 0) == RETRIES + 1 for e in chain(error)), chain(error)
    assert_flow(figures, [*brief, "held"], {*failed, "held"})


class TinyDisk:
    """A small tmpfs (root only): read-only or full on demand. `None` from `mount()` when
    mounting is not possible here (not root, no CAP_SYS_ADMIN); tests then fall back to chmod and
    `PRAGMA max_page_count`. HITL_FAULTS_NO_MOUNT=1 forces the fallback."""

    def __init__(self, where: Path, size: str) -> None:
        self.where = where
        self.size = size
        self.mounted = False

    def mount(self) -> TinyDisk | None:
        if os.geteuid() != 0 or os.environ.get("HITL_FAULTS_NO_MOUNT") == "1":
            return None
        self.where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.where)],
            capture_output=True,
        )
        self.mounted = done.returncode == 0
        return self if self.mounted else None

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.where)], check=True)

    def fill(self) -> None:
        with open(self.where / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass

    def free(self) -> None:
        (self.where / "filler").unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.where)], check=False)
            self.mounted = False


async def test_sqlite_read_only_file_fails_clearly_and_writes_nothing(
    tmp_path: Path, record_property: Callable[[str, object], None], engine_log: Any
) -> None:
    """A paused thread's file becomes read-only (a read-only volume, a chmod): resuming fails
    at once with a permanent `StoreUnavailableError` naming the file and the cause, nothing is
    written; once writable again, the thread resumes where it paused."""
    disk = TinyDisk(tmp_path / "ro", "8m").mount()
    if disk is None and os.geteuid() == 0:
        unavailable("root ignores file modes, and a tmpfs cannot be mounted here")
    folder = disk.where if disk is not None else tmp_path / "ro"
    folder.mkdir(exist_ok=True)
    path = folder / "readonly.db"
    figures = Figures("read-only file", "sqlite")
    record_property("method", "tmpfs remounted read-only" if disk else "chmod 0444/0555")
    thread = "readonly"
    cfg = {"configurable": {"thread_id": thread}}
    try:
        saver = sqlite_saver(path)
        graph = flow_graph(saver, figures.effects, Gates())
        paused = await graph.ainvoke({"request": thread}, cfg, interrupt_before=["act"])
        assert "done" not in paused
        head = (await saver.load(thread)).record.checkpoint_id
        await saver.aclose()
        figures.runs += 1

        if disk is not None:
            disk.remount("ro")
        else:
            for item in folder.iterdir():
                item.chmod(0o444)
            folder.chmod(0o555)
        saver = sqlite_saver(path)
        graph = flow_graph(saver, figures.effects, Gates())
        figures.faults += 1
        with anyio.fail_after(TIMEOUT), pytest.raises(StoreUnavailableError) as caught:
            await graph.ainvoke(None, cfg)
        figures.runs += 1
        figures.failed += 1
        await saver.aclose()
        if disk is not None:
            disk.remount("rw")
        else:
            folder.chmod(0o755)
            for item in folder.iterdir():
                item.chmod(0o644)

        saver = sqlite_saver(path)
        graph = flow_graph(saver, figures.effects, Gates())
        assert (await saver.load(thread)).record.checkpoint_id == head  # nothing was written
        with anyio.fail_after(TIMEOUT):
            await graph.ainvoke(None, cfg, wait=LEASE_TTL * 3)
        figures.runs += 1
        await check_flow(graph, figures, [thread])
        await saver.aclose()
    finally:
        if disk is not None:
            disk.unmount()
        else:
            folder.chmod(0o755)
    figures.record(record_property, engine_log)
    error = caught.value
    assert not error.transient and error.attempts == 1
    assert str(path) in str(error) and "read-only" in str(error)
    assert_flow(figures, [thread], set())


async def test_sqlite_disk_full_fails_clearly_and_resumes(
    tmp_path: Path, record_property: Callable[[str, object], None], engine_log: Any
) -> None:
    """The disk fills up while a run is in flight: its next commit fails at once (no retry)
    with a permanent `StoreUnavailableError`; the last committed checkpoint is intact and the
    thread resumes once there is room."""
    disk = TinyDisk(tmp_path / "full", "4m").mount()
    folder = disk.where if disk is not None else tmp_path
    path = folder / "full.db"
    figures = Figures("disk full", "sqlite")
    record_property("method", "tmpfs filled up" if disk else "PRAGMA max_page_count")
    thread = "full"
    saver = sqlite_saver(path)
    try:
        gates = Gates()
        graph = flow_graph(saver, figures.effects, gates)
        await saver.setup()

        async def fill(open_gate: Callable[[], None]) -> None:
            if disk is not None:
                disk.fill()
            else:

                def cap(conn: Any) -> None:
                    pages = conn.execute("PRAGMA page_count").fetchone()[0]
                    conn.execute(f"PRAGMA max_page_count = {pages}")

                await saver._run(cap)
            open_gate()

        async def free() -> None:
            if disk is not None:
                disk.free()
            else:
                await saver._run(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))

        error = await faulted_run(graph, gates, figures, thread, fill, after=free)
        await check_flow(graph, figures, [thread])
    finally:
        await saver.aclose()
        if disk is not None:
            disk.unmount()
    figures.record(record_property, engine_log)
    assert isinstance(error, StoreUnavailableError), error
    assert not error.transient and error.attempts == 1
    assert str(path) in str(error) and "full" in str(error)
    assert retries(engine_log) == 0
    assert_flow(figures, [thread], {thread})


async def test_chain_partly_stored_before_the_connection_broke(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
    engine_log: Any,
) -> None:
    """A batch of queued checkpoints (durability "async") whose write stored the first two and
    then lost the connection (simulated: a driver whose `commit_many` is not atomic would do
    this): the retry conflicts, the engine finds its second checkpoint at the head and writes
    only the rest."""
    import hitl_async._outbox

    monkeypatch.setattr(hitl_async._outbox, "BATCH_SECONDS", 60.0)  # queue until the pause
    saver = sqlite_saver(tmp_path / "chain.db")
    figures = Figures("chain partly stored, then the connection broke", "sqlite")
    real = saver.commit_many
    sizes: list[int] = []

    async def partly(commits: Any, *, lease: Any = None, release: bool = False) -> None:
        sizes.append(len(commits))
        if len(sizes) > 1:
            return await real(commits, lease=lease, release=release)
        for c in commits[:2]:
            await saver.commit(
                c.record,
                c.blobs,
                expected_head=c.expected_head,
                writes=c.writes,
                lease=lease,
                inbox=c.inbox,
            )
        raise StoreUnavailableError("the test's store", "the connection broke (simulated)")

    saver.commit_many = partly
    graph = flow_graph(saver, figures.effects, Gates())
    cfg = {"configurable": {"thread_id": "chain"}}
    try:
        with anyio.fail_after(TIMEOUT):
            paused = await graph.ainvoke({"request": "chain"}, cfg, interrupt_before=["act"])
            figures.runs += 1
            figures.faults += 1
            assert "done" not in paused
            await graph.ainvoke(None, cfg)
            figures.runs += 1
        await check_flow(graph, figures, ["chain"])
    finally:
        await saver.aclose()
    figures.record(record_property, engine_log)
    assert sizes[0] >= 3, sizes  # input, START and prepare's steps at least, queued together
    assert reconciled(engine_log) == 1
    assert_flow(figures, ["chain"], set())


# -- a worker process SIGKILLed mid-run; another worker recovers the thread ---------------------


def effect(name: str) -> None:
    """Record a side effect durably (O_APPEND: safe from several processes)."""
    fd = os.open(os.environ["HITL_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name}\n".encode())
    finally:
        os.close(fd)


HOLD = {"armed": False}
BLOCK = os.environ.get("HITL_BLOCK") == "1"  # set in the worker process that gets killed


def merge(a: list[str], b: list[str]) -> list[str]:
    return a + b


class Kill(TypedDict, total=False):
    request: str
    a: str
    b: str
    log: Annotated[list[str], merge]


async def node_a(state: Kill) -> dict[str, Any]:
    effect("a")
    HOLD["armed"] = os.environ.get("HITL_HOLD") == "1"
    return {"a": "a"}


async def node_b(state: Kill) -> dict[str, Any]:
    if BLOCK:
        effect("marker:b-started")
        await anyio.sleep(3600)
    effect("b")
    return {"b": "b"}


async def node_fast(state: Kill) -> dict[str, Any]:
    effect("fast")
    return {"log": ["fast"]}


async def node_slow(state: Kill) -> dict[str, Any]:
    if BLOCK:
        effect("marker:slow-started")
        await anyio.sleep(3600)
    effect("slow")
    return {"log": ["slow"]}


def kill_graph(kind: str, saver: Any) -> Any:
    """ "chain": a -> b; "pair": fast and slow in parallel."""
    b = StateGraph(Kill)
    if kind == "chain":
        b.add_node("a", node_a)
        b.add_node("b", node_b)
        b.add_edge(START, "a")
        b.add_edge("a", "b")
        b.add_edge("b", END)
    else:
        b.add_node("fast", node_fast)
        b.add_node("slow", node_slow)
        b.add_edge(START, "fast")
        b.add_edge(START, "slow")
        b.add_edge(["fast", "slow"], END)
    return b.compile(checkpointer=saver, name=f"kill-{kind}", lease_ttl=KILL_LEASE_TTL)


def hold_writes(saver: Any) -> None:
    """Once `HOLD` is armed, the next store write never happens (it waits forever), so the
    process can be killed after a node's side effect and before its commit."""
    for name in ("commit", "commit_many", "put_writes"):
        real = getattr(saver, name)

        async def held(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if HOLD["armed"]:
                effect("marker:held")
                await anyio.sleep(3600)
            return await _real(*args, **kwargs)

        setattr(saver, name, held)


async def worker_main(store: str, options: str, kind: str, mode: str, thread: str) -> None:
    """The process that gets killed: runs `thread` itself (mode: its durability), or serves
    the run queue as a `Worker` (mode "queue"; a worker's runs use durability "async")."""
    saver = connect(store, **json.loads(options))
    hold_writes(saver)
    graph = kill_graph(kind, saver)
    if mode == "queue":
        await Worker(graph, concurrency=1, claim_ttl=KILL_LEASE_TTL, poll=0.1).run()
    else:
        await graph.ainvoke(
            {"request": thread}, {"configurable": {"thread_id": thread}}, durability=mode
        )


def lines(effects: Path) -> list[str]:
    return effects.read_text().splitlines() if effects.exists() else []


async def kill_and_recover(
    shared_store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    kind: str,
    mode: str,
    hold: bool,
    killed_after: Callable[[Any, list[str]], Awaitable[bool]],
) -> tuple[Counter[str], list[str], tuple[str, ...]]:
    """Start `kind` on a thread in a worker process (mode: the run's durability, or "queue":
    submitted to the run queue the process serves), SIGKILL it once `killed_after(saver,
    effects)` says so, let this process recover the thread (`arecover()`, or a `Worker` for a
    queued run). Returns the side effects (by name), what is wrong with the thread, and the
    nodes its last commit before the recovery left to run."""
    effects = tmp_path / "effects"
    monkeypatch.setenv("HITL_EFFECTS", str(effects))
    thread = f"{kind}-{mode}"
    saver = shared_store.connect()
    graph = kill_graph(kind, saver)
    if mode == "queue":
        handle = await graph.asubmit({"request": thread}, {"configurable": {"thread_id": thread}})
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            shared_store.url,
            json.dumps(shared_store.options),
            kind,
            mode,
            thread,
        ],
        cwd=TESTS,
        env={
            **os.environ,
            "PYTHONPATH": str(TESTS),
            "HITL_BLOCK": "1",
            "HITL_HOLD": "1" if hold else "0",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with anyio.fail_after(TIMEOUT):
            while not await killed_after(saver, lines(effects)):
                if proc.poll() is not None:
                    raise AssertionError(f"the worker exited: {proc.communicate()[1]}")
                await anyio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=TIMEOUT)
        cfg = {"configurable": {"thread_id": thread}}
        left = (await graph.aget_state(cfg)).next  # what the last commit left to run
        with anyio.fail_after(TIMEOUT):
            if mode == "queue":
                worker = Worker(graph, concurrency=1, claim_ttl=KILL_LEASE_TTL, poll=0.1)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(worker.run)
                    await handle.result(timeout=TIMEOUT)
                    worker.stop()
            else:
                while thread not in await graph.arecover():
                    await anyio.sleep(0.1)
        values: dict[str, Any] = (
            {"request": thread, "a": "a", "b": "b", "log": []}
            if kind == "chain"
            else {"request": thread, "log": ["fast", "slow"]}  # applied in task order
        )
        found = await problems(graph, thread, values)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        await saver.aclose()
    done = Counter(e for e in lines(effects) if not e.startswith("marker:"))
    return done, found, left


def kill_figures(scenario: str, driver: str, done: Counter[str], found: list[str]) -> Figures:
    figures = Figures(scenario, driver, runs=2, faults=1)
    figures.effects = Counter({("t", name): n for name, n in done.items()})
    if found:
        figures.lost.add("t")
    return figures


async def test_worker_killed_after_a_parallel_siblings_pending_write(
    shared_store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    """durability "sync", fast and slow in parallel: fast finished and its pending write is
    stored; the worker is killed while slow runs. Recovery runs slow only: exactly once each."""
    thread = "pair-sync"

    async def fast_stored(saver: Any, effects: list[str]) -> bool:
        if "fast" not in effects:
            return False
        loaded = await saver.load(thread)
        return loaded is not None and any(w.task_path == "fast" for w in loaded.writes)

    done, found, left = await kill_and_recover(
        shared_store,
        tmp_path,
        monkeypatch,
        kind="pair",
        mode="sync",
        hold=False,
        killed_after=fast_stored,
    )
    figures = kill_figures(
        "worker SIGKILLed, sibling's write stored", shared_store.kind, done, found
    )
    figures.record(record_property)
    assert not found, found
    assert left == ("slow",), left  # fast finished: its result is a pending write
    assert done == Counter({"fast": 1, "slow": 1}), done


async def test_worker_killed_between_side_effect_and_commit(
    shared_store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    """durability "sync": node a did its side effect, then the worker is killed before a's
    step is committed. The last committed checkpoint (before a) is intact and recovery
    continues from it, so a runs again: at-least-once inside that window, by design."""

    async def commit_held(saver: Any, effects: list[str]) -> bool:
        return "marker:held" in effects

    done, found, left = await kill_and_recover(
        shared_store,
        tmp_path,
        monkeypatch,
        kind="chain",
        mode="sync",
        hold=True,
        killed_after=commit_held,
    )
    figures = kill_figures("worker SIGKILLed before the commit", shared_store.kind, done, found)
    figures.record(record_property)
    assert not found, found
    assert left == ("a",), left  # the last commit is the one before a's step, intact
    assert done == Counter({"a": 2, "b": 1}), done


async def test_worker_killed_during_the_next_step_with_async_durability(
    shared_store: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    """durability "async": a finished, b is running when the worker is killed. a's checkpoint
    may still be queued (async durability writes in batches), so recovery may run a again: the
    thread ends right either way; how often a ran is recorded."""

    async def b_started(saver: Any, effects: list[str]) -> bool:
        return "marker:b-started" in effects

    done, found, left = await kill_and_recover(
        shared_store,
        tmp_path,
        monkeypatch,
        kind="chain",
        mode="queue",
        hold=False,
        killed_after=b_started,
    )
    figures = kill_figures("worker SIGKILLed mid-step, async", shared_store.kind, done, found)
    figures.record(record_property)
    record_property("left_to_run_at_kill", ",".join(left) or "nothing committed")
    assert not found, found
    assert done["b"] == 1 and done["a"] in (1, 2), done


if __name__ == "__main__":
    sys.exit(anyio.run(worker_main, *sys.argv[1:6]))
