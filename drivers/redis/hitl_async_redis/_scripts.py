"""The Lua scripts of the Redis driver: one script per operation, each one round trip.

Every script runs atomically on the server. Keys of one thread share a hash tag, so each script
touches one cluster slot, except the global `{prefix}:threads` index (see `_saver` docstring).

Stored checkpoint values are `<n>:<lua part><python part>`: the first `n` bytes after the colon
are a msgpack array the scripts read with `cmsgpack` (`[channel_versions, filter_index,
created_at]`, strings only: Redis' cmsgpack cannot read msgpack `bin`); the rest is opaque to Lua.
Blob fields are `lp(channel) .. version`, write fields `lp(checkpoint_id) .. lp(task_id) .. idx`,
where `lp(s) = #s .. ':' .. s` (length-prefixed, so fields never collide and all writes of one
checkpoint share the prefix `lp(checkpoint_id)`, which a ZRANGEBYLEX range selects).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = [
    "COMMIT",
    "DELETE_THREAD",
    "HISTORY",
    "LIST_THREADS",
    "LOAD",
    "PRUNE",
    "PUT_WRITES",
    "SCRIPTS",
    "Script",
]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1 (what EVALSHA is called with)."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


# Shared helpers, prepended to every script.
_LIB = r"""
local SUFFIXES = {':cp:', ':idx:', ':blobs:', ':w:', ':wi:'}

local function lp(s)
  return #s .. ':' .. s
end

-- The Lua-readable part of a stored checkpoint: {channel_versions, filter_index, created_at}.
local function lua_part(value)
  local colon = string.find(value, ':', 1, true)
  local n = tonumber(string.sub(value, 1, colon - 1))
  return cmsgpack.unpack(string.sub(value, colon + 1, colon + n))
end

-- Run `cmd key items...` in chunks (Lua's unpack has a stack limit); append replies to `out`.
local function chunked(cmd, key, items, first, last, out)
  first = first or 1
  last = last or #items
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    local r = redis.call(cmd, key, unpack(items, i, j))
    if out then
      for k = 1, #r do out[#out + 1] = r[k] end
    end
    i = j + 1
  end
  return out
end

-- Field names of the pending writes of one checkpoint.
local function write_fields(wi, cid)
  local p = lp(cid)
  return redis.call('ZRANGEBYLEX', wi, '[' .. p, '(' .. p .. '\255')
end

local function drop_writes(w, wi, cid)
  local old = write_fields(wi, cid)
  if #old > 0 then
    chunked('HDEL', w, old)
    chunked('ZREM', wi, old)
  end
end

-- {cid, value, {channel, blob, ...}, {write, ...}}: one loaded checkpoint.
local function gather(cid, value, part, blobs, w, wi)
  local chans, fields = {}, {}
  for ch, ver in pairs(part[1]) do
    chans[#chans + 1] = ch
    fields[#fields + 1] = lp(ch) .. ver
  end
  local data = {}
  if #fields > 0 then chunked('HMGET', blobs, fields, 1, #fields, data) end
  local flat = {}
  for i = 1, #chans do
    flat[#flat + 1] = chans[i]
    flat[#flat + 1] = data[i]
  end
  local writes = {}
  local wf = write_fields(wi, cid)
  if #wf > 0 then chunked('HMGET', w, wf, 1, #wf, writes) end
  return {cid, value, flat, writes}
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Byte-wise a > b (Lua's `<` on strings follows the server's locale).
local function bytes_gt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
"""

_COMMIT = r"""
-- KEYS: head nsset cp idx blobs w wi threads
-- ARGV: ns expected cid value ttl_ms thread_id base nblobs [field data]*nblobs [field data]*
-- expected/actual heads are '' (none) or '=' .. id. Returns 1; on a head conflict the actual
-- head; 2 when checkpoint `cid` is already stored (ids are never reused). Both write nothing.
local ns = ARGV[1]
local cur = redis.call('HGET', KEYS[1], ns)
if cur then cur = '=' .. cur else cur = '' end
if cur ~= ARGV[2] then return cur end
local cid = ARGV[3]
if redis.call('HEXISTS', KEYS[3], cid) == 1 then return 2 end
redis.call('HSET', KEYS[3], cid, ARGV[4])
redis.call('ZADD', KEYS[4], 0, cid)
local nblobs = tonumber(ARGV[8])
local first = 9
local last = first + 2 * nblobs - 1
if nblobs > 0 then chunked('HSET', KEYS[5], ARGV, first, last) end
if #ARGV > last then
  drop_writes(KEYS[6], KEYS[7], cid)
  chunked('HSET', KEYS[6], ARGV, last + 1, #ARGV)
  local members = {}
  for i = last + 1, #ARGV, 2 do
    members[#members + 1] = 0
    members[#members + 1] = ARGV[i]
  end
  chunked('ZADD', KEYS[7], members)
end
redis.call('HSET', KEYS[1], ns, cid)
redis.call('SADD', KEYS[2], ns)
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  local base = ARGV[7]
  for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    for _, s in ipairs(SUFFIXES) do redis.call('PEXPIRE', base .. s .. n, ttl) end
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('ZADD', KEYS[8], now_ms() + ttl, ARGV[6])
else
  redis.call('ZADD', KEYS[8], '+inf', ARGV[6])
end
return 1
"""

_PUT_WRITES = r"""
-- KEYS: nsset w wi ; ARGV: ns ttl_ms [field data]*
chunked('HSET', KEYS[2], ARGV, 3, #ARGV)
local members = {}
for i = 3, #ARGV, 2 do
  members[#members + 1] = 0
  members[#members + 1] = ARGV[i]
end
chunked('ZADD', KEYS[3], members)
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
"""

_LOAD = r"""
-- KEYS: head cp blobs w wi ; ARGV: ns cid ('' = the head)
local cid = ARGV[2]
if cid == '' then
  cid = redis.call('HGET', KEYS[1], ARGV[1])
  if not cid then return false end
end
local value = redis.call('HGET', KEYS[2], cid)
if not value then return false end
return gather(cid, value, lua_part(value), KEYS[3], KEYS[4], KEYS[5])
"""

_HISTORY = r"""
-- KEYS: cp idx blobs w wi ; ARGV: max_bound limit (0 = all) nfilter [key canonical_value]*
local limit = tonumber(ARGV[2])
local nfilter = tonumber(ARGV[3])
local filter = {}
for i = 1, nfilter do filter[ARGV[2 + 2 * i]] = ARGV[3 + 2 * i] end
local chunk = 128
if limit > 0 and nfilter == 0 and limit < chunk then chunk = limit end
local max = ARGV[1]
local out = {}
while true do
  local ids = redis.call('ZREVRANGEBYLEX', KEYS[2], max, '-', 'LIMIT', 0, chunk)
  for _, cid in ipairs(ids) do
    local value = redis.call('HGET', KEYS[1], cid)
    if value then
      local part = lua_part(value)
      local index = part[2]
      local ok = true
      for k, v in pairs(filter) do
        if index[k] ~= v then
          ok = false
          break
        end
      end
      if ok then
        out[#out + 1] = gather(cid, value, part, KEYS[3], KEYS[4], KEYS[5])
        if limit > 0 and #out >= limit then return out end
      end
    end
  end
  if #ids < chunk then break end
  max = '(' .. ids[#ids]
end
return out
"""

_PRUNE = r"""
-- KEYS: head nsset ; ARGV: base keep_last (0 = unset) cutoff ('' = unset). Returns #deleted.
local base = ARGV[1]
local keep_last = tonumber(ARGV[2])
local cutoff = ARGV[3]
local removed = 0
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local cp, idx, blobs = base .. ':cp:' .. ns, base .. ':idx:' .. ns, base .. ':blobs:' .. ns
  local w, wi = base .. ':w:' .. ns, base .. ':wi:' .. ns
  local head = redis.call('HGET', KEYS[1], ns)
  local ids = redis.call('ZRANGE', idx, 0, -1)
  local n = #ids
  local live = {}
  local gone = {}
  for i, cid in ipairs(ids) do
    local value = redis.call('HGET', cp, cid)
    local part = value and lua_part(value)
    local keep = cid == head or (keep_last > 0 and i > n - keep_last)
      or (cutoff ~= '' and part and bytes_gt(part[3], cutoff))
    if keep then
      if part then
        for ch, ver in pairs(part[1]) do live[lp(ch) .. ver] = true end
      end
    else
      gone[#gone + 1] = cid
      drop_writes(w, wi, cid)
    end
  end
  if #gone > 0 then
    chunked('HDEL', cp, gone)
    chunked('ZREM', idx, gone)
    removed = removed + #gone
  end
  local orphans = {}
  for _, f in ipairs(redis.call('HKEYS', blobs)) do
    if not live[f] then orphans[#orphans + 1] = f end
  end
  if #orphans > 0 then chunked('HDEL', blobs, orphans) end
end
return removed
"""

_DELETE_THREAD = r"""
-- KEYS: head nsset threads ; ARGV: base thread_id
local base = ARGV[1]
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  for _, s in ipairs(SUFFIXES) do redis.call('UNLINK', base .. s .. ns) end
end
redis.call('UNLINK', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""

_LIST_THREADS = r"""
-- KEYS: threads ; ARGV: limit (-1 = all). Drops threads whose keys have expired (by TTL).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local limit = tonumber(ARGV[1])
if limit == 0 then return {} end
return redis.call('ZRANGE', KEYS[1], 0, limit > 0 and limit - 1 or -1)
"""


def _script(name: str, body: str) -> Script:
    return Script(name, f"-- hitl_async_redis: {name}\n{_LIB}\n{body}")


COMMIT = _script("commit", _COMMIT)
PUT_WRITES = _script("put_writes", _PUT_WRITES)
LOAD = _script("load", _LOAD)
HISTORY = _script("history", _HISTORY)
PRUNE = _script("prune", _PRUNE)
DELETE_THREAD = _script("delete_thread", _DELETE_THREAD)
LIST_THREADS = _script("list_threads", _LIST_THREADS)

SCRIPTS: tuple[Script, ...] = (
    COMMIT,
    PUT_WRITES,
    LOAD,
    HISTORY,
    PRUNE,
    DELETE_THREAD,
    LIST_THREADS,
)
