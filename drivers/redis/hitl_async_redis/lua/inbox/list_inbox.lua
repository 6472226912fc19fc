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
