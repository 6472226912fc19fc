"""The long-term memory store on a plain Redis server: `connect_store("redis://...", prefix=...)`.

No modules are needed. Key layout (`P` = the `prefix` option, the checkpoints' prefix; `M` = the
namespace text, a NUL, the key; NUL cannot occur in either):

    P:store:i:M   hash   v (JSON value), c / u (created / updated, us), t (TTL minutes), e (expiry)
    P:store:idx   zset   every M, score 0: ZRANGEBYLEX finds a namespace prefix's items
    P:store:exp   zset   M of items with a TTL, scored by expiry: the sweeper's work list
    P:store:ns    hash   namespace text -> number of items (list_namespaces)
    P:store:v:M   hash   field path -> float32 vector (semantic search)

Writes are Lua scripts (atomic); reads are pipelines. Filters, ordering and similarity run in
Python over a prefix's items, so a search costs O(items under the prefix): fine for memories
kept per user or per assistant, less so for one huge namespace (use PostgreSQL for that).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from hitl_async.store.backend import PutRow, StoredRow
from hitl_async.store.base import IndexConfig, TTLConfig
from hitl_async.store.driver import BackendStore, grouping_options
from hitl_async.store.filters import Condition

__all__ = ["RedisStore", "RedisStoreBackend", "store_from_url"]

_WRITE = """
local p = ARGV[1]
local spec = cjson.decode(ARGV[2])
for _, d in ipairs(spec.deletes) do
  local m = d
  if redis.call('DEL', p .. ':store:i:' .. m) == 1 then
    redis.call('ZREM', p .. ':store:idx', m)
    redis.call('ZREM', p .. ':store:exp', m)
    local ns = string.sub(m, 1, string.find(m, '\\0', 1, true) - 1)
    if redis.call('HINCRBY', p .. ':store:ns', ns, -1) <= 0 then
      redis.call('HDEL', p .. ':store:ns', ns)
    end
  end
  redis.call('DEL', p .. ':store:v:' .. m)
end
local nput = #spec.puts
local nextv = 3 + nput
for i, w in ipairs(spec.puts) do
  local m = w[1]
  local k = p .. ':store:i:' .. m
  if redis.call('EXISTS', k) == 0 then
    redis.call('HSET', k, 'c', w[3])
    redis.call('ZADD', p .. ':store:idx', 0, m)
    redis.call('HINCRBY', p .. ':store:ns', w[6], 1)
  end
  redis.call('HSET', k, 'v', ARGV[2 + i], 'u', w[3])
  if w[4] then
    redis.call('HSET', k, 'e', w[4], 't', w[5])
    redis.call('ZADD', p .. ':store:exp', w[4], m)
  else
    redis.call('HDEL', k, 'e', 't')
    redis.call('ZREM', p .. ':store:exp', m)
  end
  if w[2] then
    local vk = p .. ':store:v:' .. m
    redis.call('DEL', vk)
    for _, field in ipairs(w[7]) do
      redis.call('HSET', vk, field, ARGV[nextv])
      nextv = nextv + 1
    end
  end
end
return 1
"""

_TOUCH = """
local p = ARGV[1]
local now = tonumber(ARGV[2])
for i = 3, #ARGV do
  local k = p .. ':store:i:' .. ARGV[i]
  local t = redis.call('HGET', k, 't')
  if t then
    local e = now + math.floor(tonumber(t) * 60000000)
    redis.call('HSET', k, 'e', string.format('%.0f', e))
    redis.call('ZADD', p .. ':store:exp', e, ARGV[i])
  end
end
return 1
"""

_SWEEP = """
local p = ARGV[1]
local gone = redis.call('ZRANGEBYSCORE', p .. ':store:exp', '-inf', ARGV[2], 'LIMIT', 0, 500)
for _, m in ipairs(gone) do
  redis.call('DEL', p .. ':store:i:' .. m, p .. ':store:v:' .. m)
  redis.call('ZREM', p .. ':store:idx', m)
  redis.call('ZREM', p .. ':store:exp', m)
  local ns = string.sub(m, 1, string.find(m, '\\0', 1, true) - 1)
  if redis.call('HINCRBY', p .. ':store:ns', ns, -1) <= 0 then
    redis.call('HDEL', p .. ':store:ns', ns)
  end
end
return #gone
"""

_FIELDS = ("v", "c", "u", "t", "e")


def _member(ns: str, key: str) -> str:
    return f"{ns}\x00{key}"


def _under(ns: str, prefix: str) -> bool:
    return not prefix or ns == prefix or ns.startswith(prefix + ".")


class RedisStoreBackend:
    """`StoreBackend` on a `redis.asyncio` client per event loop."""

    sync_capable = False

    def __init__(self, url: str, *, prefix: str = "hitl", **client_options: Any) -> None:
        if not prefix:
            raise ValueError("prefix must be a non-empty string")
        self.url = url
        self.prefix = prefix
        self.client_options = client_options
        self._clients: dict[asyncio.AbstractEventLoop, Redis] = {}
        self._scripts: dict[str, str] = {}

    def pushdown(self, conditions: tuple[Condition, ...]) -> bool:
        return not conditions

    def _client(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for old in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[old]
            client = Redis.from_url(self.url, **self.client_options)
            self._clients[loop] = client
        return client

    async def _script(self, name: str, source: str, *args: Any) -> Any:
        client = self._client()
        sha = self._scripts.get(name)
        if sha is not None:
            try:
                return await client.evalsha(sha, 0, *args)
            except NoScriptError:  # after a server restart or SCRIPT FLUSH: load it again
                pass
        self._scripts[name] = await client.script_load(source)
        return await client.evalsha(self._scripts[name], 0, *args)

    async def setup(self) -> None:
        await self._client().ping()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
        self._clients.clear()

    async def destroy(self) -> None:
        """Delete every store key under the prefix (tests)."""
        client = self._client()
        pattern = self.prefix.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
        pattern = pattern.replace("[", "\\[") + ":store:*"
        async for key in client.scan_iter(match=pattern, count=1000):
            await client.unlink(key)

    def _row(self, member: str, values: list[Any]) -> StoredRow | None:
        v, c, u, t, _ = values
        if v is None:
            return None
        ns, _, key = member.partition("\x00")
        return StoredRow(ns, key, v, int(c), int(u), None if t is None else float(t))

    async def _load(self, members: list[str], live_after: int | None) -> list[StoredRow | None]:
        if not members:
            return []
        pipe = self._client().pipeline(transaction=False)
        for m in members:
            pipe.hmget(f"{self.prefix}:store:i:{m}", _FIELDS)
        rows: list[StoredRow | None] = []
        for m, values in zip(members, await pipe.execute(), strict=True):
            expires = values[4]
            if live_after is not None and expires is not None and int(expires) <= live_after:
                rows.append(None)
            else:
                rows.append(self._row(m, values))
        return rows

    async def fetch(
        self, refs: list[tuple[str, str]], live_after: int | None, sync: bool
    ) -> list[StoredRow | None]:
        return await self._load([_member(ns, key) for ns, key in refs], live_after)

    async def write(self, puts: list[PutRow], deletes: list[tuple[str, str]], sync: bool) -> None:
        # cjson decodes JSON null to a userdata that Lua treats as true: absent values are false.
        spec = {
            "deletes": [_member(ns, key) for ns, key in deletes],
            "puts": [
                [
                    _member(p.namespace, p.key),
                    p.vectors is not None,
                    str(p.now_us),
                    False if p.expires_us is None else str(p.expires_us),
                    False if p.ttl_minutes is None else repr(p.ttl_minutes),
                    p.namespace,
                    [field for field, _ in p.vectors or ()],
                ]
                for p in puts
            ],
        }
        blobs = [blob for p in puts for _, blob in p.vectors or ()]
        args = [p.value for p in puts]
        await self._script("write", _WRITE, self.prefix, orjson.dumps(spec), *args, *blobs)

    async def touch(self, refs: list[tuple[str, str]], now_us: int, sync: bool) -> None:
        members = [_member(ns, key) for ns, key in refs]
        await self._script("touch", _TOUCH, self.prefix, str(now_us), *members)

    async def _members(self, prefix: str) -> list[str]:
        client = self._client()
        idx = f"{self.prefix}:store:idx"
        if not prefix:
            raw = await client.zrange(idx, 0, -1)
        else:
            pipe = client.pipeline(transaction=False)
            pipe.zrangebylex(idx, f"[{prefix}\x00", f"({prefix}\x01")
            pipe.zrangebylex(idx, f"[{prefix}.", f"({prefix}/")
            exact, below = await pipe.execute()
            raw = [*exact, *below]
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    async def query(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        limit: int | None,
        offset: int,
        live_after: int | None,
        sync: bool,
    ) -> list[StoredRow]:
        rows = [r for r in await self._load(await self._members(prefix), live_after) if r]
        rows.sort(key=lambda r: (-r.updated_us, r.namespace, r.key))
        return rows[offset : None if limit is None else offset + limit]

    async def candidates(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        live_after: int | None,
        sync: bool,
    ) -> list[tuple[StoredRow, list[bytes]]]:
        rows = [r for r in await self._load(await self._members(prefix), live_after) if r]
        if not rows:
            return []
        pipe = self._client().pipeline(transaction=False)
        for r in rows:
            pipe.hvals(f"{self.prefix}:store:v:{_member(r.namespace, r.key)}")
        return list(zip(rows, await pipe.execute(), strict=True))

    async def namespaces(self, prefix: str, live_after: int | None, sync: bool) -> list[str]:
        client = self._client()
        counts = {
            (k.decode() if isinstance(k, bytes) else k): int(v)
            for k, v in (await client.hgetall(f"{self.prefix}:store:ns")).items()
        }
        if live_after is not None:
            expired = await client.zrangebyscore(f"{self.prefix}:store:exp", "-inf", live_after)
            for m in expired:
                ns = (m.decode() if isinstance(m, bytes) else str(m)).partition("\x00")[0]
                if ns in counts:
                    counts[ns] -= 1
        return [ns for ns, n in counts.items() if n > 0 and _under(ns, prefix)]

    async def sweep(self, now_us: int, sync: bool) -> int:
        total = 0
        while True:
            n = int(await self._script("sweep", _SWEEP, self.prefix, str(now_us)))
            total += n
            if n < 500:
                return total


class RedisStore(BackendStore):
    """A store on a plain Redis server under key prefix `prefix`, with TTLs and optional
    semantic search."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "hitl",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        group_commit: bool = True,
        batches_in_flight: int = 1,
        **client_options: Any,
    ) -> None:
        self.redis = RedisStoreBackend(url, prefix=prefix, **client_options)
        super().__init__(
            self.redis,
            index=index,
            ttl=ttl,
            group_commit=group_commit,
            batches_in_flight=batches_in_flight,
        )

    async def destroy(self) -> None:
        """Delete the store's keys (for tests)."""
        await self.redis.destroy()

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.redis.prefix!r})"


_SAVER_ONLY = {"max_batch", "ttl", "pool_timeout"}


def store_from_url(url: str, **options: Any) -> RedisStore:
    """The `hitl_async.stores` entry point: a `RedisStore` for a `redis://` URL (the
    checkpoints' URL; its `prefix` applies, options only the saver knows are ignored)."""
    parts = urlsplit(url)
    # The saver's `ttl` (seconds, a number) shares its name with the store's (a TTLConfig dict).
    options = {
        k: v
        for k, v in options.items()
        if k not in _SAVER_ONLY or (k == "ttl" and isinstance(v, dict))
    }
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("prefix", "group_commit", "batches_in_flight"):
            options.setdefault(key, value)
        elif key not in _SAVER_ONLY:
            kept.append((key, value))
    clean = urlunsplit(parts._replace(query=urlencode(kept)))
    return RedisStore(clean, **grouping_options(options))
