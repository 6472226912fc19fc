"""Load: 2000 threads started at once on every driver (memory, sqlite, postgres, redis), each run
to its interrupt, then all 2000 answered at once, with no semaphore in the test: the driver's own
pool (postgres `max_size`, redis `max_connections`, sqlite's single connection thread) is what
bounds the connections.

Asserted: no exception in any of the 4000 runs; every thread ends with the right final state
and nothing pending (threads lost = 0); each side-effecting node ran exactly once per thread
(duplicate side effects = 0); server connections stayed within the pool bound (sampled from a
separate thread and connection while the load runs); peak RSS growth stayed bounded.

The figures go to the junit report through `record_property` (runs, faults injected, threads
lost, duplicate side effects, seconds per phase, peak connections, peak RSS growth).
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import pytest
from apps.stores import SharedStore
from typing_extensions import TypedDict

from hitl_async import END, START, Command, InMemorySaver, StateGraph, connect, interrupt

pytestmark = pytest.mark.anyio

THREADS = 2000
WARM = 5
PHASE_TIMEOUT = 240.0  # seconds per phase; a hang fails instead of blocking the suite
SAMPLE_EVERY = 0.02

PG_MAX_SIZE = 10
PG_LISTENERS = 2  # the per-loop LISTEN connection, plus one of slack
REDIS_MAX_CONNECTIONS = 20
REDIS_LISTENERS = 3  # pub/sub changes listener and XREAD watchers, opened only by waits
FD_SLACK = 4  # files a driver may open besides its connections (sqlite's -wal and -shm)
# Peak RSS growth for 2000 threads started and answered, each driver in a fresh interpreter:
# memory 19 MB, redis 33, postgres 37, sqlite 43 (property `rss_growth_mb`); about 3.5x that.
RSS_GROWTH_LIMIT_MB = 150

MB = 1024 * 1024


class Approval(TypedDict, total=False):
    request: str
    prepared: str
    answer: str
    done: str


def approval_graph(saver: Any, effects: Counter[tuple[str, str]]) -> Any:
    """prepare (side effect) -> ask (interrupt) -> act (side effect). `ask` reruns on resume by
    design, so it has no side effect; `prepare` and `act` must each run once per thread."""

    async def prepare(state: Approval) -> dict[str, Any]:
        effects[state["request"], "prepare"] += 1
        return {"prepared": f"p:{state['request']}"}

    async def ask(state: Approval) -> dict[str, Any]:
        return {"answer": interrupt({"approve": state["request"]})}

    async def act(state: Approval) -> dict[str, Any]:
        effects[state["request"], "act"] += 1
        return {"done": f"{state['request']}={state['answer']}"}

    b = StateGraph(Approval)
    b.add_node("prepare", prepare)
    b.add_node("ask", ask)
    b.add_node("act", act)
    b.add_edge(START, "prepare")
    b.add_edge("prepare", "ask")
    b.add_edge("ask", "act")
    b.add_edge("act", END)
    return b.compile(checkpointer=saver, name="load")


def process_figures() -> dict[str, int]:
    """This process's RSS in bytes, open file descriptors and OS threads (psutil); without
    psutil, the peak RSS so far (getrusage) and the Python threads."""
    try:
        import psutil
    except ImportError:  # ru_maxrss: kilobytes on Linux, bytes on macOS
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss = peak if sys.platform == "darwin" else peak * 1024
        return {"rss": rss, "os_threads": threading.active_count()}
    proc = psutil.Process()
    figures = {"rss": int(proc.memory_info().rss), "os_threads": proc.num_threads()}
    if hasattr(proc, "num_fds"):
        figures["fds"] = proc.num_fds()
    return figures


Probe = Callable[[], Awaitable[dict[str, int]]]
ProbeFactory = Callable[[], Awaitable[tuple[Probe, Callable[[], Awaitable[None]]]]]


class Sampler:
    """Samples RSS and, with a probe, server connection counts every SAMPLE_EVERY seconds from
    a thread of its own (own event loop, own connection), so a saturated test loop cannot
    starve it; keeps the peak of every figure."""

    def __init__(self, probe_factory: ProbeFactory | None = None) -> None:
        self.probe_factory = probe_factory
        self.first: dict[str, int] = {}  # the baseline: sampled before the load starts
        self.peak: dict[str, int] = {}
        self.samples = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="load sampler", daemon=True)

    def _record(self, figures: dict[str, int]) -> None:
        if not self.first:
            self.first = dict(figures)
        for key, value in figures.items():
            self.peak[key] = max(self.peak.get(key, value), value)

    def _main(self) -> None:
        try:
            asyncio.run(self._sample())
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    async def _sample(self) -> None:
        probe: Probe | None = None
        close: Callable[[], Awaitable[None]] | None = None
        if self.probe_factory is not None:
            probe, close = await self.probe_factory()
        try:
            while True:
                figures = process_figures()
                if probe is not None:
                    figures.update(await probe())
                self._record(figures)
                self.samples += 1
                self._ready.set()
                if self._stop.is_set():
                    return
                await asyncio.sleep(SAMPLE_EVERY)
        finally:
            if close is not None:
                await close()

    def growth(self, key: str) -> int:
        return self.peak[key] - self.first[key]

    def __enter__(self) -> Sampler:
        self._thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise self.error


def postgres_probe(url: str, application_name: str) -> ProbeFactory:
    """Counts `pg_stat_activity` rows of the database: all of them, and the saver's own (its
    pool and LISTEN connections carry `application_name`), from a connection of its own."""
    database = urlsplit(url).path.lstrip("/")

    async def factory() -> tuple[Probe, Callable[[], Awaitable[None]]]:
        import asyncpg

        conn = await asyncpg.connect(url)

        async def probe() -> dict[str, int]:
            row = await conn.fetchrow(
                "SELECT count(*) AS total, count(*) FILTER (WHERE application_name = $2) AS ours"
                " FROM pg_stat_activity WHERE datname = $1",
                database,
                application_name,
            )
            return {"connections": row["ours"], "server_connections": row["total"]}

        return probe, conn.close

    return factory


def redis_probe(url: str, client_name: str) -> ProbeFactory:
    """`INFO clients` connected_clients (the whole server, this probe's client included) and
    the saver's own connections (`CLIENT LIST` entries named `client_name`)."""

    async def factory() -> tuple[Probe, Callable[[], Awaitable[None]]]:
        from redis.asyncio import Redis

        client = Redis.from_url(url)

        async def probe() -> dict[str, int]:
            info = await client.info("clients")
            clients = await client.client_list()
            ours = sum(1 for c in clients if c.get("name") == client_name)
            return {"connections": ours, "server_connections": int(info["connected_clients"])}

        return probe, client.aclose

    return factory


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def thread_cfg(i: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"load-{i:04d}"}}


async def all_at_once(
    count: int, run: Callable[[int], Awaitable[None]]
) -> tuple[float, list[tuple[int, BaseException]]]:
    """Start `count` tasks at once in one task group; returns the seconds taken and every
    failure (index, exception), so one failure neither hides the others nor cancels them."""
    errors: list[tuple[int, BaseException]] = []

    async def guarded(i: int) -> None:
        try:
            await run(i)
        except Exception as exc:
            errors.append((i, exc))

    started = time.perf_counter()
    with anyio.fail_after(PHASE_TIMEOUT):
        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(guarded, i)
    return time.perf_counter() - started, errors


def describe(errors: list[tuple[int, BaseException]]) -> str:
    kinds = Counter(type(exc).__name__ for _, exc in errors)
    first = "; ".join(f"thread {i}: {exc!r}" for i, exc in errors[:5])
    return f"{len(errors)} failed runs {dict(kinds)}; first: {first}"


async def run_load(
    saver: Any,
    record_property: Callable[[str, object], None],
    probe_factory: ProbeFactory | None = None,
) -> Sampler:
    """Start THREADS threads at once to their interrupt, answer them all at once, check them
    all; records the figures, asserts, and returns the sampler (peaks and baseline)."""
    effects: Counter[tuple[str, str]] = Counter()
    graph = approval_graph(saver, effects)

    # Warm up (lazy imports, pool, prepared statements, scripts) so the baseline is steady.
    for i in range(WARM):
        cfg = {"configurable": {"thread_id": f"warm-{i}"}}
        assert "__interrupt__" in await graph.ainvoke({"request": f"warm-{i}"}, cfg)
        assert (await graph.ainvoke(Command(resume="ok"), cfg))["done"] == f"warm-{i}=ok"
    assert set(effects.values()) == {1}
    effects.clear()
    gc.collect()

    paused: dict[int, Any] = {}
    finished: dict[int, Any] = {}

    async def start(i: int) -> None:
        paused[i] = await graph.ainvoke({"request": f"r{i}"}, thread_cfg(i))

    async def answer(i: int) -> None:
        finished[i] = await graph.ainvoke(Command(resume=f"yes-{i}"), thread_cfg(i))

    with Sampler(probe_factory) as sampler:
        start_seconds, start_errors = await all_at_once(THREADS, start)
        answer_seconds, answer_errors = await all_at_once(THREADS, answer)

    lost: set[int] = set()
    for i in range(THREADS):
        interrupts = paused.get(i, {}).get("__interrupt__", ())
        if len(interrupts) != 1 or interrupts[0].value != {"approve": f"r{i}"}:
            lost.add(i)
        expected = {"request": f"r{i}", "prepared": f"p:r{i}", "answer": f"yes-{i}"}
        if finished.get(i) != {**expected, "done": f"r{i}=yes-{i}"}:
            lost.add(i)

    async def check(i: int) -> None:
        snapshot = await graph.aget_state(thread_cfg(i))
        if snapshot.next or snapshot.interrupts or snapshot.values.get("done") != f"r{i}=yes-{i}":
            lost.add(i)

    check_seconds, check_errors = await all_at_once(THREADS, check)

    expected_effects = {(f"r{i}", node) for i in range(THREADS) for node in ("prepare", "act")}
    missing = expected_effects - set(effects)
    unexpected = set(effects) - expected_effects
    duplicates = sum(n - 1 for n in effects.values() if n > 1)
    rss_growth_mb = sampler.growth("rss") / MB

    record_property("threads", THREADS)
    record_property("runs", 2 * THREADS)
    record_property("faults_injected", 0)
    record_property("failed_runs", len(start_errors) + len(answer_errors))
    record_property("threads_lost", len(lost))
    record_property("duplicate_side_effects", duplicates)
    record_property("start_seconds", round(start_seconds, 2))
    record_property("answer_seconds", round(answer_seconds, 2))
    record_property("check_seconds", round(check_seconds, 2))
    record_property("rss_baseline_mb", round(sampler.first["rss"] / MB, 1))
    record_property("rss_growth_mb", round(rss_growth_mb, 1))
    for key in ("fds", "os_threads"):
        if key in sampler.peak:
            record_property(f"{key}_growth", sampler.growth(key))
    record_property("samples", sampler.samples)
    for key in ("connections", "server_connections"):
        if key in sampler.peak:
            record_property(f"max_{key}", sampler.peak[key])

    assert not start_errors, f"start phase: {describe(start_errors)}"
    assert not answer_errors, f"answer phase: {describe(answer_errors)}"
    assert not check_errors, f"state check: {describe(check_errors)}"
    assert not lost, f"{len(lost)} threads lost, e.g. {sorted(lost)[:10]}"
    assert not missing, f"{len(missing)} side effects never happened, e.g. {sorted(missing)[:5]}"
    assert not unexpected, f"side effects of unknown threads: {sorted(unexpected)[:5]}"
    assert duplicates == 0, f"{duplicates} duplicate side effects, e.g. " + repr(
        sorted(k for k, n in effects.items() if n > 1)[:5]
    )
    assert sampler.samples >= 2
    assert rss_growth_mb < RSS_GROWTH_LIMIT_MB, (
        f"peak RSS grew {rss_growth_mb:.0f} MB for {THREADS} threads"
    )
    return sampler


@pytest.fixture
def record_property(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """pytest's `record_property` without its warning under the default junit family (xunit2,
    which still writes testcase properties): the same `user_properties` list, so the figures
    land in the junit XML as `<property>` elements of each test case."""

    def record(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))

    return record


async def test_2000_threads_at_once_on_memory(
    record_property: Callable[[str, object], None],
) -> None:
    sampler = await run_load(InMemorySaver(), record_property)
    if "fds" in sampler.peak:
        assert sampler.growth("fds") <= FD_SLACK, "memory: the load opened files or sockets"


async def test_2000_threads_at_once_with_bounded_connections(
    shared_store: SharedStore, record_property: Callable[[str, object], None]
) -> None:
    tag = f"hitl-load-{uuid.uuid4().hex[:8]}"
    if shared_store.kind == "postgres":
        url = with_query(shared_store.url, application_name=tag)
        saver = connect(url, **shared_store.options, max_size=PG_MAX_SIZE)
        probe: ProbeFactory | None = postgres_probe(shared_store.url, tag)
        bound = PG_MAX_SIZE + PG_LISTENERS
    elif shared_store.kind == "redis":
        options = {**shared_store.options, "client_name": tag}
        saver = connect(shared_store.url, **options, max_connections=REDIS_MAX_CONNECTIONS)
        probe = redis_probe(shared_store.url, tag)
        bound = REDIS_MAX_CONNECTIONS + REDIS_LISTENERS
    else:  # sqlite: one connection on one worker thread by design
        saver = shared_store.connect()
        probe = None
        bound = 0
    record_property("driver", shared_store.kind)
    record_property("connection_bound", bound)
    try:
        sampler = await run_load(saver, record_property, probe)
    finally:
        await saver.aclose()
    if probe is not None:
        held = sampler.peak["connections"]
        assert 1 <= held <= bound, (
            f"{shared_store.kind}: the saver held {held} server connections at peak, bound {bound}"
        )
    # Client side too (immune to other clients of the server): sockets and files this process
    # opened during the load.
    if "fds" in sampler.peak:
        opened = sampler.growth("fds")
        assert opened <= bound + FD_SLACK, (
            f"{shared_store.kind}: {opened} more open file descriptors at peak, bound {bound}"
        )
