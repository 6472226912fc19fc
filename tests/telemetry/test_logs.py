"""Structured logs: the run's ids on every record, and runs retrying through a store outage
logging it once between them, not once per retry."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import anyio
import pytest
from apps.services import REDIS_URL, require_package, require_service
from typing_extensions import TypedDict

from hitl_async import END, START, InMemorySaver, StateGraph, connect
from hitl_async.telemetry import LOG_FIELDS, RunContextFilter, get_logger

pytestmark = pytest.mark.anyio


class State(TypedDict, total=False):
    n: int


def fields(record: logging.LogRecord) -> tuple[Any, ...]:
    return tuple(getattr(record, name) for name in LOG_FIELDS)


async def test_records_carry_the_thread_run_and_checkpoint_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = get_logger("hitl_async.run")
    seen: list[str | None] = []

    async def step(state: State) -> dict[str, Any]:
        seen.append(None)
        log.warning("inside the node")
        return {"n": state["n"] + 1}

    b = StateGraph(State)
    b.add_node("step", step)
    b.add_edge(START, "step")
    b.add_edge("step", END)
    graph = b.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "logged"}, "metadata": {"run_id": "r-7"}}
    with caplog.at_level(logging.WARNING, logger="hitl_async.run"):
        await graph.ainvoke({"n": 1}, config)
        log.warning("after the run")
    inside, after = caplog.records
    head = (await graph.aget_state(config)).config["configurable"]["checkpoint_id"]
    thread_id, run_id, checkpoint_id = fields(inside)
    assert (thread_id, run_id) == ("logged", "r-7")
    assert checkpoint_id is not None and checkpoint_id < head  # the step's own checkpoint
    assert fields(after) == (None, None, None)  # the run is over
    explicit = logging.LogRecord("hitl_async.run", logging.INFO, __file__, 1, "m", (), None)
    explicit.thread_id = "given"
    RunContextFilter().filter(explicit)
    assert explicit.thread_id == "given"  # a value passed in `extra` wins


def test_engine_and_driver_loggers_carry_the_filter() -> None:
    names = ["hitl_async.run", "hitl_async.worker"]
    for module, logger in (
        ("hitl_async_postgres", "hitl_async_postgres.saver"),
        ("hitl_async_redis", "hitl_async_redis._notify"),
    ):
        require_package(module, f"drivers/{module.removeprefix('hitl_async_')}")
        __import__(logger)
        names.append(logger)
    for name in names:
        assert any(isinstance(f, RunContextFilter) for f in logging.getLogger(name).filters), name


class Proxy:
    """A TCP proxy in front of a server: `stop()` drops every connection and refuses new ones
    (the server is down, as clients see it) until `start()`."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                writer.transport.abort()
                up_writer.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def redis_proxy() -> Any:
    require_package("hitl_async_redis", "drivers/redis")
    require_service("redis", REDIS_URL)
    from urllib.parse import urlsplit

    parts = urlsplit(REDIS_URL)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    try:
        yield proxy, f"redis://127.0.0.1:{proxy.port}{parts.path}"
    finally:
        await proxy.stop()


async def test_runs_retrying_through_an_outage_log_it_once(
    redis_proxy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, url = redis_proxy
    saver = connect(url, prefix=f"t{uuid.uuid4().hex[:12]}")
    await saver.setup()
    gate = anyio.Event()

    async def wait(state: State) -> dict[str, Any]:
        await gate.wait()
        return {"n": state["n"] + 1}

    b = StateGraph(State)
    b.add_node("wait", wait)
    b.add_edge(START, "wait")
    b.add_edge("wait", END)
    graph = b.compile(checkpointer=saver)
    results: list[Any] = []

    async def run(n: int) -> None:
        config = {"configurable": {"thread_id": f"o{n}"}}
        results.append(await graph.ainvoke({"n": n}, config, durability="sync"))

    with caplog.at_level(logging.INFO, logger="hitl_async.run"):
        async with anyio.create_task_group() as tg:
            for n in range(4):
                tg.start_soon(run, n)
            await anyio.sleep(0.3)  # all four wait in their node
            await proxy.stop()
            gate.set()  # their commits meet the outage ...
            await anyio.sleep(0.15)
            await proxy.start()  # ... and a retry gets through
    assert sorted(r["n"] for r in results) == [1, 2, 3, 4]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert "the checkpoint store is unavailable" in warnings[0].getMessage()
    assert "the checkpoint store is back after" in warnings[1].getMessage()
    assert warnings[0].thread_id in {f"o{n}" for n in range(4)}
    retries = [
        r for r in caplog.records if r.levelno == logging.INFO and " retry " in r.getMessage()
    ]
    assert len(retries) >= 4  # each run's retries, as details
    await saver.destroy()
    await saver.aclose()
