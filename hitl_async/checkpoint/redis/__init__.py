"""`RedisSaver` / `AsyncRedisSaver` under the names of LangGraph's Redis savers
(`langgraph.checkpoint.redis`, from langgraph-checkpoint-redis).

    from hitl_async.checkpoint.redis import RedisSaver

    with RedisSaver.from_conn_string(redis_url="redis://localhost:6379") as checkpointer:
        checkpointer.setup()
        graph = builder.compile(checkpointer=checkpointer)

It is the `hitl-async-redis` driver's saver (`pip install hitl-async-redis`; plain Redis >= 6,
no modules). Given a redis-py client, it connects to the same server and database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from hitl_async.checkpoint.langgraph_names import (
    SyncSetup,
    close_blocking,
    no_serde,
    require_driver,
)

require_driver("hitl_async_redis", "hitl-async-redis")

import hitl_async_redis  # noqa: E402 - after the check that names the missing distribution

__all__ = ["AsyncRedisSaver", "RedisSaver", "redis_arguments"]


def _client_url(client: Any) -> str:
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    if not isinstance(kwargs, dict):
        raise TypeError(f"cannot tell which Redis server {client!r} talks to: pass redis_url=")
    user = quote(str(kwargs.get("username") or ""), safe="")
    password = kwargs.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else ""
    scheme = "rediss" if kwargs.get("ssl") else "redis"
    host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"{scheme}://{auth}{host}:{port}/{db}"


def redis_arguments(
    redis_url: str | None,
    redis_client: Any,
    connection_args: dict[str, Any] | None,
    ttl: Any,
    options: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The driver's `(url, options)` from LangGraph's Redis saver arguments. `ttl` may be
    LangGraph's `{"default_ttl": minutes}` or seconds / a timedelta."""
    if redis_url is None:
        redis_url = _client_url(redis_client) if redis_client is not None else None
    if redis_url is None:
        raise ValueError("pass redis_url='redis://host:6379' (or redis_client=)")
    merged = {**(connection_args or {}), **options}
    if isinstance(ttl, dict):
        minutes = ttl.get("default_ttl")
        merged["ttl"] = timedelta(minutes=minutes) if minutes is not None else None
    elif ttl is not None:
        merged["ttl"] = ttl
    return redis_url, merged


class RedisSaver(SyncSetup, hitl_async_redis.RedisSaver):
    """LangGraph's `RedisSaver(redis_url=..., redis_client=...)` on the hitl-async Redis driver;
    other keywords are the driver's options (`prefix`, `max_connections`, ...)."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis_client: Any = None,
        connection_args: dict[str, Any] | None = None,
        ttl: Any = None,
        serde: Any = None,
        **options: Any,
    ) -> None:
        no_serde(serde, type(self).__name__)
        url, merged = redis_arguments(redis_url, redis_client, connection_args, ttl, options)
        super().__init__(url, **merged)

    @classmethod
    @contextmanager
    def from_conn_string(
        cls, redis_url: str | None = None, *, redis_client: Any = None, **options: Any
    ) -> Iterator[RedisSaver]:
        """A saver on `redis_url` (or the server `redis_client` talks to), closed on exit."""
        saver = cls(redis_url, redis_client=redis_client, **options)
        try:
            yield saver
        finally:
            close_blocking(saver)


class AsyncRedisSaver(hitl_async_redis.RedisSaver):
    """LangGraph's `AsyncRedisSaver(redis_url=...)` on the hitl-async Redis driver."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis_client: Any = None,
        connection_args: dict[str, Any] | None = None,
        ttl: Any = None,
        serde: Any = None,
        **options: Any,
    ) -> None:
        no_serde(serde, type(self).__name__)
        url, merged = redis_arguments(redis_url, redis_client, connection_args, ttl, options)
        super().__init__(url, **merged)

    async def asetup(self) -> None:
        """LangGraph's name for `setup()`."""
        await self.setup()

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, redis_url: str | None = None, *, redis_client: Any = None, **options: Any
    ) -> AsyncIterator[AsyncRedisSaver]:
        """A saver on `redis_url` (or the server `redis_client` talks to), closed on exit."""
        saver = cls(redis_url, redis_client=redis_client, **options)
        try:
            await saver.asetup()
            yield saver
        finally:
            await saver.aclose()
