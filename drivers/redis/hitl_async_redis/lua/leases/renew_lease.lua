-- KEYS: lease leases ; ARGV: member token ttl_ms
-- Returns {1, expires_ms}, or {0, current token} when the lease is lost (nothing changes).
local h = redis.call('HMGET', KEYS[1], 'token', 'released')
if h[1] ~= ARGV[2] or h[2] == '1' then return {0, h[1] or false} end
local expires = now_ms() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'expires', expires)
redis.call('ZADD', KEYS[2], expires, ARGV[1])
return {1, expires}
