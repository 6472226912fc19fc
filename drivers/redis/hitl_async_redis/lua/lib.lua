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
