"""examples/memory_agent.py runs end to end on every durable driver: memories approved in one
thread are recalled in another, and a refusal stores nothing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service

EXAMPLE = Path(__file__).parents[2] / "examples" / "memory_agent.py"


async def _cleanup(url: str) -> None:
    if url.startswith("postgresql"):
        import asyncpg

        schema = url.rpartition("schema=")[2]
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    elif url.startswith("redis"):
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL)
        prefix = url.rpartition("prefix=")[2]
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.unlink(key)
        await client.aclose()


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    tag = uuid.uuid4().hex[:10]
    if request.param == "sqlite":
        require_package("hitl_async_sqlite", "drivers/sqlite")
        yield f"sqlite:///{tmp_path / 'memory.db'}"
        return
    if request.param == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        found = f"{POSTGRES_URL}?schema=ex_{tag}"
    else:
        require_package("hitl_async_redis", "drivers/redis")
        require_service("redis", REDIS_URL)
        found = f"{REDIS_URL}?prefix=ex{tag}"
    yield found
    anyio.run(_cleanup, found)


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_memories_cross_threads(url: str) -> None:
    out = _run("--url", url)
    assert "[chat-1] assistant: Got it, I will remember 2 thing(s)." in out
    assert "From what you told me before: 'I drink green tea every morning'." in out
    assert "From what you told me before: 'My cat is called Miso'." in out
    assert (
        "memories of user-42: ['I drink green tea every morning', 'My cat is called Miso']" in out
    )


def test_refused_memories_are_not_kept(url: str) -> None:
    out = _run("--url", url, "--answer", "no")
    assert "Okay, I will not remember that." in out
    assert out.count("I don't know that yet.") == 2
    assert "memories of user-42: []" in out
