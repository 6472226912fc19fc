-- KEYS: queue_zset ; ARGV: prefix owner ttl_ms. Returns the claimed request (HGETALL) or false.
local now = now_ms()
local key = runnable(KEYS[1], ARGV[1], now)
if not key then return false end
redis.call('HSET', key, 'status', 'running', 'owner', ARGV[2], 'claim', now + tonumber(ARGV[3]))
redis.call('HINCRBY', key, 'attempts', 1)
return redis.call('HGETALL', key)
