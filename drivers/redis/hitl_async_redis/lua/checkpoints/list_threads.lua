-- KEYS: threads ; ARGV: limit (-1 = all). Drops threads whose keys have expired (by TTL).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local limit = tonumber(ARGV[1])
if limit == 0 then return {} end
return redis.call('ZRANGE', KEYS[1], 0, limit > 0 and limit - 1 or -1)
