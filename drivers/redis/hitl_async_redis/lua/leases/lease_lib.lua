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
