"""`RedisStore` and `AsyncRedisStore` under the names of LangGraph's Redis store
(`langgraph.store.redis`, from langgraph-checkpoint-redis), on a plain Redis server (no
modules needed).

    from hitl_async.store.redis import RedisStore

    with RedisStore.from_conn_string("redis://localhost:6379") as store:
        store.setup()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from hitl_async.checkpoint.langgraph_names import SyncSetup, close_blocking, require_driver

require_driver("hitl_async_redis", "hitl-async-redis")

from hitl_async_redis.store import RedisStore as _DriverStore  # noqa: E402

from hitl_async.checkpoint.redis import redis_arguments  # noqa: E402

__all__ = ["AsyncRedisStore", "RedisStore"]


def _url(conn: Any) -> str:
    """A `redis://` URL for `conn`: a URL as is, else a redis-py client's server."""
    if isinstance(conn, str):
        return conn
    return redis_arguments(None, conn, None, None, {})[0]


class RedisStore(SyncSetup, _DriverStore):
    """LangGraph's `RedisStore(conn)`: items on the Redis server of `conn` (a URL or a
    redis-py client)."""

    def __init__(self, conn: Any, **options: Any) -> None:
        super().__init__(_url(conn), **options)
        self.conn = conn

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str, **options: Any) -> Iterator[RedisStore]:
        """A store on `conn_string` (`index=`, `ttl=` as LangGraph's), closed on exit."""
        store = cls(conn_string, **options)
        try:
            yield store
        finally:
            close_blocking(store)


class AsyncRedisStore(_DriverStore):
    """LangGraph's `AsyncRedisStore(redis_url=..., redis_client=...)`."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        redis_client: Any = None,
        connection_args: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        url, merged = redis_arguments(redis_url, redis_client, connection_args, None, options)
        super().__init__(url, **merged)

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, conn_string: str, **options: Any
    ) -> AsyncIterator[AsyncRedisStore]:
        """A store on `conn_string`, closed on exit."""
        store = cls(conn_string, **options)
        try:
            yield store
        finally:
            await store.aclose()
