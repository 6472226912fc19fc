"""The Lua scripts of the Redis driver: one script per operation, each one round trip.

`COMMIT` writes one commit or a whole chain (`commit_many`, with the lease release), and
`ACQUIRE_AND_LOAD` takes a lease and reads the checkpoint a run starts from. Code shared by
several scripts lives in Lua fragments (`_LIB` in every script; `_LEASE_LIB`, `_LOAD_LIB`,
`_RUNS_LIB` where needed), prepended to the scripts' bodies.

Every script runs atomically on the server. Keys of one thread share a hash tag, so each script
touches one cluster slot, except the global `{prefix}:threads` index and the coordination keys
(`leases`, `inbox*`, `run*`, `q:*`; see the `_saver` docstring). Scripts that follow an index to
other keys (expired leases, inbox members, queued requests) build those key names from the
prefix passed in ARGV and the hex ids inside the index members, so Lua never hex-encodes.

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
    "ACQUIRE_AND_LOAD",
    "ACQUIRE_LEASE",
    "CLAIM",
    "COMMIT",
    "DELETE_THREAD",
    "ENQUEUE",
    "EXPIRED_LEASES",
    "FINISH",
    "HISTORY",
    "IDENTIFY",
    "LIST_INBOX",
    "LIST_THREADS",
    "LOAD",
    "PRUNE",
    "PUT_WRITES",
    "RELEASE_LEASE",
    "RENEW_CLAIM",
    "RENEW_LEASE",
    "SCRIPTS",
    "STORE_LOST",
    "WORK_STATE",
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

-- The Lua-readable part of a stored checkpoint: {channel_versions, filter_index, created_at},
-- or nil when the stored value is damaged (the caller reports it; never a Lua error).
local function lua_part(value)
  local colon = string.find(value, ':', 1, true)
  local n = colon and tonumber(string.sub(value, 1, colon - 1))
  if not n or n < 0 or colon + n > #value then return nil end
  local ok, part = pcall(cmsgpack.unpack, string.sub(value, colon + 1, colon + n))
  if not ok or type(part) ~= 'table' or type(part[1]) ~= 'table' or type(part[2]) ~= 'table'
     or type(part[3]) ~= 'string' then
    return nil
  end
  for ch, ver in pairs(part[1]) do
    if type(ch) ~= 'string' or type(ver) ~= 'string' then return nil end
  end
  return part
end

-- A damaged checkpoint as `gather` would return it: no blobs or writes (Python reports it).
local function damaged(cid, value)
  return {cid, value, {}, {}}
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

-- Upsert the pending writes `[field data]*` of argv[first..last] into hash `w` and index `wi`.
local function add_writes(w, wi, argv, first, last)
  chunked('HSET', w, argv, first, last)
  local members = {}
  for i = first, last, 2 do
    members[#members + 1] = 0
    members[#members + 1] = argv[i]
  end
  chunked('ZADD', wi, members)
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

local function bytes_lt(a, b)
  return bytes_gt(b, a)
end

-- Fencing: nil when `token` ('' = no lease) is still the thread's lease (not released; expired
-- alone does not count: nobody took the thread over), else {3, current token}.
local function lease_lost(key, token)
  if token == '' then return nil end
  local h = redis.call('HMGET', key, 'token', 'released')
  if h[1] == token and h[2] ~= '1' then return nil end
  return {3, h[1] or false}
end

-- Replace the inbox entries of one thread by the `n` triples (member, data, deadline or '')
-- of `argv` from index `first`; `tset` is the thread's set of its index members.
local function set_inbox(tset, index, data, due, ttl, argv, first, n)
  local old = redis.call('SMEMBERS', tset)
  if #old > 0 then
    chunked('ZREM', index, old)
    chunked('HDEL', data, old)
    chunked('ZREM', due, old)
    redis.call('UNLINK', tset)
  end
  for i = first, first + 3 * n - 1, 3 do
    local member = argv[i]
    redis.call('ZADD', index, 0, member)
    redis.call('HSET', data, member, argv[i + 1])
    if argv[i + 2] ~= '' then redis.call('ZADD', due, argv[i + 2], member) end
    redis.call('SADD', tset, member)
  end
  if n > 0 and ttl > 0 then redis.call('PEXPIRE', tset, ttl) end
end
"""

_COMMIT = r"""
-- One commit, or a chain of commits of one thread (each one's expected head is the previous
-- one's id), all or nothing, then optionally the release of the lease.
-- KEYS: head nsset threads lease leases tinbox inbox inbox_data inbox_due,
--       then `cp idx blobs w wi` of each namespace listed in ARGV (in that order)
-- ARGV: ttl_ms thread_id base token channel release (0/1) lease_member nns [ns]*nns
--       ncommits, then the commits in chain order, each:
--       ns expected cid value nblobs ninbox nwrites
--       [field data]*nblobs [member data deadline]*ninbox [field data]*nwrites
-- expected/actual heads are '' (none) or '=' .. id; token '' = no lease; ninbox -1 = keep the
-- inbox. The lease is checked once, then every commit against the head its predecessors leave
-- and against the ids stored or earlier in the chain, before anything is written. Returns 1;
-- {3, current token} when the lease is lost; {4, i, refusal} when commit i is refused: the
-- actual head on a head conflict, 2 when checkpoint `cid` exists (ids are never reused).
-- Only 1 writes.
local lost = lease_lost(KEYS[4], ARGV[4])
if lost then return lost end
local nns = tonumber(ARGV[8])
local nskeys = {}
for j = 1, nns do
  local k = 9 + 5 * (j - 1)
  nskeys[ARGV[8 + j]] = {cp = KEYS[k + 1], idx = KEYS[k + 2], blobs = KEYS[k + 3],
    w = KEYS[k + 4], wi = KEYS[k + 5]}
end
local n = tonumber(ARGV[9 + nns])
local pos = 10 + nns
local chain, heads, ids = {}, {}, {}
for i = 1, n do
  local a = pos
  local nblobs, ninbox, nwrites = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]),
    tonumber(ARGV[a + 6])
  local c = {ns = ARGV[a], expected = ARGV[a + 1], cid = ARGV[a + 2], value = ARGV[a + 3],
    ninbox = ninbox, blobs = a + 7}
  c.k = nskeys[c.ns]
  c.inbox = c.blobs + 2 * nblobs
  c.writes = c.inbox + 3 * math.max(ninbox, 0)
  pos = c.writes + 2 * nwrites
  c.stop = pos - 1
  local head = heads[c.ns]
  if not head then
    head = redis.call('HGET', KEYS[1], c.ns)
    head = head and '=' .. head or ''
  end
  if head ~= c.expected then return {4, i, head} end
  local id = lp(c.ns) .. c.cid
  if ids[id] or redis.call('HEXISTS', c.k.cp, c.cid) == 1 then return {4, i, 2} end
  ids[id] = true
  heads[c.ns] = '=' .. c.cid
  chain[i] = c
end
local ttl = tonumber(ARGV[1])
for i = 1, n do
  local c = chain[i]
  local k = c.k
  redis.call('HSET', k.cp, c.cid, c.value)
  redis.call('ZADD', k.idx, 0, c.cid)
  if c.inbox > c.blobs then chunked('HSET', k.blobs, ARGV, c.blobs, c.inbox - 1) end
  if c.ninbox >= 0 then
    set_inbox(KEYS[6], KEYS[7], KEYS[8], KEYS[9], ttl, ARGV, c.inbox, c.ninbox)
  end
  if c.stop >= c.writes then
    drop_writes(k.w, k.wi, c.cid)
    add_writes(k.w, k.wi, ARGV, c.writes, c.stop)
  end
  redis.call('HSET', KEYS[1], c.ns, c.cid)
  redis.call('SADD', KEYS[2], c.ns)
end
if ttl > 0 then
  local base = ARGV[3]
  for _, ns in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    for _, s in ipairs(SUFFIXES) do redis.call('PEXPIRE', base .. s .. ns, ttl) end
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[6], ttl)
  redis.call('ZADD', KEYS[3], now_ms() + ttl, ARGV[2])
else
  redis.call('ZADD', KEYS[3], '+inf', ARGV[2])
end
if ARGV[6] == '1' then release(KEYS[4], KEYS[5], ARGV[7], ARGV[4]) end
redis.call('PUBLISH', ARGV[5], ARGV[2])
return 1
"""

_PUT_WRITES = r"""
-- KEYS: nsset w wi lease tinbox inbox inbox_data inbox_due
-- ARGV: ns ttl_ms token thread_id channel ninbox [member data deadline]*ninbox [field data]*
-- Returns 1, or {3, current token} (nothing written) when the lease is lost.
local lost = lease_lost(KEYS[4], ARGV[3])
if lost then return lost end
local ttl = tonumber(ARGV[2])
local ninbox = tonumber(ARGV[6])
local first = 7
if ninbox >= 0 then
  set_inbox(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ttl, ARGV, first, ninbox)
  first = first + 3 * ninbox
end
if #ARGV >= first then
  add_writes(KEYS[2], KEYS[3], ARGV, first, #ARGV)
  redis.call('SADD', KEYS[1], ARGV[1])
  if ttl > 0 then
    for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
"""

_LOAD_LIB = r"""
-- The head of namespace `ns` (or checkpoint `cid`, '' = the head) as `gather` returns it, or
-- false when there is none. `k` is the KEYS index of `head cp blobs w wi`.
local function load_checkpoint(k, ns, cid)
  if cid == '' then
    cid = redis.call('HGET', KEYS[k], ns)
    if not cid then return false end
  end
  local value = redis.call('HGET', KEYS[k + 1], cid)
  if not value then return false end
  local part = lua_part(value)
  if not part then return damaged(cid, value) end
  return gather(cid, value, part, KEYS[k + 2], KEYS[k + 3], KEYS[k + 4])
end
"""

_LOAD = r"""
-- KEYS: head cp blobs w wi ; ARGV: ns cid ('' = the head)
return load_checkpoint(1, ARGV[1], ARGV[2])
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
      local index = part and part[2] or {}
      local ok = true
      if not part then
        out[#out + 1] = damaged(cid, value)  -- reported, whatever the filter
        ok = false
        if limit > 0 and #out >= limit then return out end
      end
      for k, v in pairs(part and filter or {}) do
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
  local unsure = false  -- a damaged checkpoint: which blobs it needs is unknown
  for i, cid in ipairs(ids) do
    local value = redis.call('HGET', cp, cid)
    local part = value and lua_part(value)
    local keep = cid == head or (keep_last > 0 and i > n - keep_last)
      or (cutoff ~= '' and part and bytes_gt(part[3], cutoff))
    if value and not part then keep, unsure = true, true end  -- damaged: keep it and its blobs
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
  if not unsure then
    for _, f in ipairs(redis.call('HKEYS', blobs)) do
      if not live[f] then orphans[#orphans + 1] = f end
    end
  end
  if #orphans > 0 then chunked('HDEL', blobs, orphans) end
end
return removed
"""

_DELETE_THREAD = r"""
-- KEYS: head nsset threads tinbox inbox inbox_data inbox_due ; ARGV: base thread_id channel
-- The lease hash stays: its token must never go back (a stale holder would pass the fence).
local base = ARGV[1]
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  for _, s in ipairs(SUFFIXES) do redis.call('UNLINK', base .. s .. ns) end
end
redis.call('UNLINK', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
set_inbox(KEYS[4], KEYS[5], KEYS[6], KEYS[7], 0, ARGV, 1, 0)
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
"""

_LIST_THREADS = r"""
-- KEYS: threads ; ARGV: limit (-1 = all). Drops threads whose keys have expired (by TTL).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local limit = tonumber(ARGV[1])
if limit == 0 then return {} end
return redis.call('ZRANGE', KEYS[1], 0, limit > 0 and limit - 1 or -1)
"""

# -- coordination: leases -----------------------------------------------------------------------

_LEASE_LIB = r"""
-- Take the lease hash `key` (`member` of the `leases` zset) with the next token: {1, token,
-- expires_ms}, or {0, holder, expires_ms} (nothing changes) when it is held and live.
local function acquire(key, leases, member, owner, ttl_ms, graph)
  local now = now_ms()
  local h = redis.call('HMGET', key, 'owner', 'expires', 'released')
  if h[1] and h[3] ~= '1' and tonumber(h[2]) >= now then return {0, h[1], h[2]} end
  local expires = now + tonumber(ttl_ms)
  local token = redis.call('HINCRBY', key, 'token', 1)
  redis.call('HSET', key, 'owner', owner, 'expires', expires, 'graph', graph, 'released', '0')
  redis.call('ZADD', leases, expires, member)
  return {1, token, expires}
end

-- Mark the lease released if its token is still `token`; returns whether it was.
local function release(key, leases, member, token)
  if redis.call('HGET', key, 'token') ~= token then return false end
  redis.call('HSET', key, 'released', '1')
  redis.call('ZREM', leases, member)
  return true
end
"""

_ACQUIRE_LEASE = r"""
-- KEYS: lease leases ; ARGV: member owner ttl_ms graph
-- Returns {1, token, expires_ms}, or {0, holder, expires_ms} when the thread is busy.
return acquire(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""

_ACQUIRE_AND_LOAD = r"""
-- KEYS: lease leases head cp blobs w wi ; ARGV: member owner ttl_ms graph ns cid ('' = head)
-- Returns {1, token, expires_ms, checkpoint as LOAD returns it (nil: none)}, or
-- {0, holder, expires_ms} when the thread is busy (nothing is read).
local r = acquire(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if r[1] == 1 then r[4] = load_checkpoint(3, ARGV[5], ARGV[6]) end
return r
"""

_RENEW_LEASE = r"""
-- KEYS: lease leases ; ARGV: member token ttl_ms
-- Returns {1, expires_ms}, or {0, current token} when the lease is lost (nothing changes).
local h = redis.call('HMGET', KEYS[1], 'token', 'released')
if h[1] ~= ARGV[2] or h[2] == '1' then return {0, h[1] or false} end
local expires = now_ms() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'expires', expires)
redis.call('ZADD', KEYS[2], expires, ARGV[1])
return {1, expires}
"""

_RELEASE_LEASE = r"""
-- KEYS: lease leases ; ARGV: member token channel thread_id. Returns 1 when released.
if not release(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""

_EXPIRED_LEASES = r"""
-- KEYS: leases ; ARGV: prefix graph_filter (0/1) graph limit
-- Unreleased leases whose expiry passed, oldest first: flat [member owner token expires graph]*.
local prefix, filter, graph, limit = ARGV[1], ARGV[2] == '1', ARGV[3], tonumber(ARGV[4])
local now = now_ms()
local out, stale = {}, {}
local offset = 0
while #out < 5 * limit do
  local ms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', offset, 100)
  for _, m in ipairs(ms) do
    local h = redis.call('HMGET', prefix .. ':{' .. m .. '}:lease', 'owner', 'token', 'expires',
      'graph', 'released')
    if not h[2] or h[5] == '1' then
      stale[#stale + 1] = m
    elseif (not filter or h[4] == graph) and #out < 5 * limit then
      for _, v in ipairs({m, h[1], h[2], h[3], h[4]}) do out[#out + 1] = v end
    end
  end
  if #ms < 100 then break end
  offset = offset + #ms
end
if #stale > 0 then chunked('ZREM', KEYS[1], stale) end
return out
"""

# -- coordination: the inbox index --------------------------------------------------------------

_LIST_INBOX = r"""
-- KEYS: inbox inbox_data inbox_due [tinbox] ; ARGV: prefix after ('' = none) limit
--   node_filter node graph_filter graph due_before ('' = none)
-- The data of matching entries in index order. Reads only the index keys and entry data:
-- with tinbox (a thread_id filter) that thread's member set, else with due_before the
-- deadline zset, else the lexicographic index itself. Entries whose thread expired (its member
-- set is gone, with `ttl`) are dropped from the index on the way.
local prefix, after, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local node_f, node, graph_f, graph = ARGV[4] == '1', ARGV[5], ARGV[6] == '1', ARGV[7]
local due_before = ARGV[8]
local out, stale = {}, {}

local function tset_of(member)
  local t = string.match(member, '^[^.]*%.([^.]*)')
  return t and prefix .. ':{t' .. t .. '}:inbox'
end

-- One length-prefixed part `<n>:<bytes>` of `s` at `pos`: the part and the position after it,
-- or nil when `s` is not well formed there.
local function lp_part(s, pos)
  local c = string.find(s, ':', pos, true)
  local n = c and tonumber(string.sub(s, pos, c - 1))
  if not n or n < 0 or c + n > #s then return nil end
  return string.sub(s, c + 1, c + n), c + n + 1
end

-- The node and graph of an entry's data, or nil when it is damaged: `h1:<16 hex>:<body>` whose
-- hex is the start of sha1(body) (entries written before the check have no `h1:`).
local function entry_fields(data)
  local body = data
  if string.sub(data, 1, 3) == 'h1:' then
    body = string.sub(data, 21)
    if string.sub(data, 20, 20) ~= ':' or
       string.sub(redis.sha1hex(body), 1, 16) ~= string.sub(data, 4, 19) then
      return nil
    end
  end
  local node_v, pos = lp_part(body, 1)
  if not node_v then return nil end
  local graph_v = lp_part(body, pos)
  if not graph_v then return nil end
  return node_v, graph_v
end

-- Append `member` and its data if it matches (a damaged entry always: it cannot be filtered,
-- and it must not vanish from the inbox); returns true once `limit` entries were found.
local function consider(member, check_set)
  local data = redis.call('HGET', KEYS[2], member)
  local tset = check_set and tset_of(member)
  if not data or (tset and redis.call('SISMEMBER', tset, member) == 0) then
    stale[#stale + 1] = member
    return false
  end
  local node_v, graph_v = entry_fields(data)
  if node_v then
    if node_f and node_v ~= node then return false end
    if graph_f and graph_v ~= graph then return false end
  end
  out[#out + 1] = member
  out[#out + 1] = data
  return #out >= 2 * limit
end

if KEYS[4] or due_before ~= '' then
  local members
  if KEYS[4] then
    members = redis.call('SMEMBERS', KEYS[4])
  else
    members = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. due_before)
  end
  local picked = {}
  for _, m in ipairs(members) do
    if after == '' or bytes_gt(m, after) then
      local ok = true
      if KEYS[4] and due_before ~= '' then
        local score = redis.call('ZSCORE', KEYS[3], m)
        ok = score ~= false and tonumber(score) < tonumber(due_before)
      end
      if ok then picked[#picked + 1] = m end
    end
  end
  table.sort(picked, bytes_lt)
  for _, m in ipairs(picked) do
    if consider(m, not KEYS[4]) then break end
  end
else
  local min = after == '' and '-' or '(' .. after
  local done = false
  while not done do
    local ms = redis.call('ZRANGEBYLEX', KEYS[1], min, '+', 'LIMIT', 0, 100)
    for _, m in ipairs(ms) do
      if consider(m, true) then
        done = true
        break
      end
    end
    if #ms < 100 then break end
    min = '(' .. ms[#ms]
  end
end
if #stale > 0 then
  chunked('ZREM', KEYS[1], stale)
  chunked('HDEL', KEYS[2], stale)
  chunked('ZREM', KEYS[3], stale)
end
return out
"""

# -- coordination: the run queue ----------------------------------------------------------------

_RUNS_LIB = r"""
local MAXLEN = 1000

-- Append a wake-up entry to the stream of queue `qhex`.
local function wake(prefix, qhex, rid)
  redis.call('XADD', prefix .. ':q:' .. qhex, 'MAXLEN', '~', MAXLEN, '*', 'r', rid)
end

-- The first runnable request of the queue zset `zkey` in (created_at, id) order: queued, or
-- running with an expired claim, and its thread has no running request with a live claim.
-- Returns its key (or nil) and the earliest future claim expiry seen (ms, -1 if none), when a
-- blocked or reclaimable request may become runnable.
local function runnable(zkey, prefix, now)
  local busy, stale = {}, {}
  local wake_at = -1
  local function note(expires)
    if expires >= now and (wake_at < 0 or expires < wake_at) then wake_at = expires end
  end
  local function is_busy(thex)
    if busy[thex] == nil then
      busy[thex] = false
      for _, rid in ipairs(redis.call('SMEMBERS', prefix .. ':{t' .. thex .. '}:runs')) do
        local h = redis.call('HMGET', prefix .. ':run:' .. rid, 'status', 'claim')
        local expires = tonumber(h[2]) or 0
        if h[1] == 'running' and expires >= now then
          busy[thex] = true
          note(expires)
        end
      end
    end
    return busy[thex]
  end
  local found = nil
  local min = '-'
  while not found do
    local ms = redis.call('ZRANGEBYLEX', zkey, min, '+', 'LIMIT', 0, 100)
    for _, m in ipairs(ms) do
      local key = prefix .. ':run:' .. string.match(m, '([^.]*)$')
      local h = redis.call('HMGET', key, 'status', 'claim', 'thex')
      local expires = tonumber(h[2]) or 0
      if h[1] == 'queued' or (h[1] == 'running' and expires < now) then
        if not is_busy(h[3]) then
          found = key
          break
        end
      elseif h[1] == 'running' then
        note(expires)
      else
        stale[#stale + 1] = m
      end
    end
    if #ms < 100 then break end
    min = '(' .. ms[#ms]
  end
  if #stale > 0 then chunked('ZREM', zkey, stale) end
  return found, wake_at
end
"""

_ENQUEUE = r"""
-- KEYS: run queue_zset stream truns ; ARGV: prefix rid member status qhex [field value]*
-- Returns 1, or 0 when a request with this id exists (nothing written).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
chunked('HSET', KEYS[1], ARGV, 6, #ARGV)
if ARGV[4] == 'queued' or ARGV[4] == 'running' then
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[2])
end
wake(ARGV[1], ARGV[5], ARGV[2])
return 1
"""

_CLAIM = r"""
-- KEYS: queue_zset ; ARGV: prefix owner ttl_ms. Returns the claimed request (HGETALL) or false.
local now = now_ms()
local key = runnable(KEYS[1], ARGV[1], now)
if not key then return false end
redis.call('HSET', key, 'status', 'running', 'owner', ARGV[2], 'claim', now + tonumber(ARGV[3]))
redis.call('HINCRBY', key, 'attempts', 1)
return redis.call('HGETALL', key)
"""

_WORK_STATE = r"""
-- KEYS: queue_zset stream ; ARGV: prefix
-- {1 if a request is runnable now else 0, the stream's last entry id, ms until the earliest
-- future claim expiry (-1: none)}; nothing is written but stale zset members.
local now = now_ms()
local key, wake_at = runnable(KEYS[1], ARGV[1], now)
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
if wake_at >= 0 then wake_at = wake_at - now end
return {key and 1 or 0, id, wake_at}
"""

_RENEW_CLAIM = r"""
-- KEYS: run ; ARGV: owner ttl_ms. Returns 1 when the claim was extended.
local h = redis.call('HMGET', KEYS[1], 'status', 'owner')
if h[1] ~= 'running' or h[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'claim', now_ms() + tonumber(ARGV[2]))
return 1
"""

_FINISH = r"""
-- KEYS: run ; ARGV: prefix rid has_owner owner status has_result result has_error error
-- Returns 1 when the status changed. Wakes the request's queue when it is given back or was
-- running (then also the queues of its thread's other pending requests: it blocked them).
local prefix, rid, status = ARGV[1], ARGV[2], ARGV[5]
local h = redis.call('HMGET', KEYS[1], 'status', 'owner', 'qhex', 'thex', 'member')
if not h[1] then return 0 end
if ARGV[3] == '0' then
  if h[1] ~= 'queued' then return 0 end
elseif h[1] ~= 'running' or h[2] ~= ARGV[4] then
  return 0
end
local zkey = prefix .. ':runs:' .. h[3]
local truns = prefix .. ':{t' .. h[4] .. '}:runs'
local queues = {}
if status == 'queued' or h[1] == 'running' then queues[h[3]] = true end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'queued')
  redis.call('HDEL', KEYS[1], 'owner', 'claim')
  -- given back: that claim was not an attempt
  if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') > 0 then
    redis.call('HINCRBY', KEYS[1], 'attempts', -1)
  end
  redis.call('ZADD', zkey, 0, h[5])
  redis.call('SADD', truns, rid)
else
  redis.call('HSET', KEYS[1], 'status', status)
  redis.call('HDEL', KEYS[1], 'claim')
  if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'result', ARGV[7])
  else redis.call('HDEL', KEYS[1], 'result') end
  if ARGV[8] == '1' then redis.call('HSET', KEYS[1], 'error', ARGV[9])
  else redis.call('HDEL', KEYS[1], 'error') end
  redis.call('ZREM', zkey, h[5])
  redis.call('SREM', truns, rid)
  if h[1] == 'running' then
    for _, other in ipairs(redis.call('SMEMBERS', truns)) do
      local q = redis.call('HGET', prefix .. ':run:' .. other, 'qhex')
      if q then queues[q] = true end
    end
  end
end
for q in pairs(queues) do wake(prefix, q, rid) end
return 1
"""


# Store identity, first in every script: the caller appends the key `P:store` to KEYS and the id
# it knows to ARGV (both removed here, so the body sees its own). A store that was emptied (a
# restart without persistence, a flush) or replaced has no id, or another one: the script
# changes nothing and fails with STORE_LOST, never acting on a store that is not the caller's.
_IDENTITY = r"""
local STORE_KEY = table.remove(KEYS)
local STORE_ID = table.remove(ARGV)
local STORE_FOUND = redis.call('GET', STORE_KEY)
if STORE_FOUND ~= STORE_ID then
  return redis.error_reply(STORE_LOST .. ' ' .. (STORE_FOUND or ''))
end
"""

STORE_LOST = "HITL_STORE_LOST"
"""The error a script raises when the store's id is not the caller's."""


def _script(name: str, body: str) -> Script:
    identity = _IDENTITY.replace("STORE_LOST ..", f"'{STORE_LOST}' ..")
    return Script(name, f"-- hitl_async_redis: {name}\n{identity}\n{_LIB}\n{body}")


IDENTIFY = Script(
    "identify",
    "redis.call('SET', KEYS[1], ARGV[1], 'NX')\nreturn redis.call('GET', KEYS[1])",
)
"""Give the store an id if it has none; return its id (how a saver learns it)."""


COMMIT = _script("commit", _LEASE_LIB + _COMMIT)
PUT_WRITES = _script("put_writes", _PUT_WRITES)
LOAD = _script("load", _LOAD_LIB + _LOAD)
HISTORY = _script("history", _HISTORY)
PRUNE = _script("prune", _PRUNE)
DELETE_THREAD = _script("delete_thread", _DELETE_THREAD)
LIST_THREADS = _script("list_threads", _LIST_THREADS)
ACQUIRE_LEASE = _script("acquire_lease", _LEASE_LIB + _ACQUIRE_LEASE)
ACQUIRE_AND_LOAD = _script("acquire_and_load", _LEASE_LIB + _LOAD_LIB + _ACQUIRE_AND_LOAD)
RENEW_LEASE = _script("renew_lease", _RENEW_LEASE)
RELEASE_LEASE = _script("release_lease", _LEASE_LIB + _RELEASE_LEASE)
EXPIRED_LEASES = _script("expired_leases", _EXPIRED_LEASES)
LIST_INBOX = _script("list_inbox", _LIST_INBOX)
ENQUEUE = _script("enqueue", _RUNS_LIB + _ENQUEUE)
CLAIM = _script("claim_request", _RUNS_LIB + _CLAIM)
WORK_STATE = _script("work_state", _RUNS_LIB + _WORK_STATE)
RENEW_CLAIM = _script("renew_claim", _RENEW_CLAIM)
FINISH = _script("finish_request", _RUNS_LIB + _FINISH)

SCRIPTS: tuple[Script, ...] = (
    COMMIT,
    PUT_WRITES,
    LOAD,
    HISTORY,
    PRUNE,
    DELETE_THREAD,
    LIST_THREADS,
    ACQUIRE_LEASE,
    ACQUIRE_AND_LOAD,
    RENEW_LEASE,
    RELEASE_LEASE,
    EXPIRED_LEASES,
    LIST_INBOX,
    ENQUEUE,
    CLAIM,
    WORK_STATE,
    RENEW_CLAIM,
    FINISH,
)
