"""`RedisSaver`: checkpoints in plain Redis (>= 6, no modules) through `redis.asyncio`.

The saver is composed of one part per capability of `hitl_async.checkpoint.capabilities`, each
a mixin over `RedisConnection` (`_connection`: options, a client per event loop, script calls
and group commit; key names in `_keys`):

    _checkpoints   RedisCheckpoints  storage (`BaseSaver`): commit, put_writes, load, history
    _leases        RedisLeases       leases with fencing (`LeaseStore`)
    _inbox         RedisInbox        the inbox index (`InboxStore`)
    _runs          RedisRunQueue     the run queue (`RunQueueStore`)
    _changes       RedisChangeFeed   change notification (`ChangeFeed`)
    _cache         RedisCache        the node cache (`CacheStore`)

Every operation is one Lua script (`_scripts`, text in `lua/`), called with EVALSHA (reloaded
on NOSCRIPT), so each is one round trip and atomic. The key layout is in `_keys`' docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from hitl_async.checkpoint.options import url_options
from hitl_async_redis._cache import RedisCache
from hitl_async_redis._changes import RedisChangeFeed
from hitl_async_redis._checkpoints import RedisCheckpoints
from hitl_async_redis._inbox import RedisInbox
from hitl_async_redis._leases import RedisLeases
from hitl_async_redis._runs import RedisRunQueue

__all__ = ["RedisSaver", "RedisUrlOptions", "from_url"]


class RedisSaver(
    RedisCheckpoints, RedisLeases, RedisInbox, RedisRunQueue, RedisChangeFeed, RedisCache
):
    """Checkpoint store on Redis. Construction does no I/O; connections are made lazily.

    One `redis.asyncio` client with a bounded `BlockingConnectionPool` is created per event
    loop on first use there, so the saver also works from a second loop (e.g. a sync facade's).
    Callers beyond `max_connections` wait up to `pool_timeout` seconds (None: forever) for a
    connection instead of failing. Waits (`wait_for_work`, `wait_for_change`) use dedicated
    connections of the loop's `Notifier` instead, opened on the first wait.

    Group commit (see the module docstring) is per event loop too: `group_commit=False` sends
    every call in a round trip of its own; `max_batch` caps the calls of one round trip and
    `batches_in_flight` the round trips of batched calls under way at once (so script calls
    hold at most `batches_in_flight` + 1 connections).
    """


@dataclass(frozen=True)
class RedisUrlOptions:
    """The `RedisSaver` options a Redis URL's query may set; every other query parameter goes
    to redis-py."""

    prefix: str = "hitl"
    ttl: float | None = None
    max_connections: int = 50
    pool_timeout: float | None = 60.0
    socket_timeout: float | None = None
    group_commit: bool = True
    max_batch: int = 32
    batches_in_flight: int = 4


def _parse_url(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split the driver's own query options (`prefix`, `ttl`, ...) off a Redis URL.

    Explicit keyword options win over the URL's. Everything else is left for redis-py.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(f"not a Redis URL (redis://, rediss://, unix://): {url!r}")
    found, kept = url_options(RedisUrlOptions, parts.query)
    found.update(options)
    clean = urlunsplit(parts._replace(query=urlencode(kept)))
    return clean, found


def from_url(url: str, **options: Any) -> RedisSaver:
    """A `RedisSaver` for `redis://`, `rediss://` or `unix://` URLs (the `connect()` entry point).

    Driver options come as keywords or URL query parameters: `prefix`, `max_connections`,
    `pool_timeout`, `ttl` (seconds), `socket_timeout`, `group_commit` (true/false),
    `max_batch`, `batches_in_flight`; other keywords go to redis-py.
    """
    clean, opts = _parse_url(url, options)
    return RedisSaver(clean, **opts)
