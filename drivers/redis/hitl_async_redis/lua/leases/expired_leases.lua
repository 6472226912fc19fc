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
