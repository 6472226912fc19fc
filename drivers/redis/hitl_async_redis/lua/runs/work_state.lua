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
