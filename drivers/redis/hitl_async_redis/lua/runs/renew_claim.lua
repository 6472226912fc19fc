-- KEYS: run ; ARGV: owner ttl_ms. Returns 1 when the claim was extended.
local h = redis.call('HMGET', KEYS[1], 'status', 'owner')
if h[1] ~= 'running' or h[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'claim', now_ms() + tonumber(ARGV[2]))
return 1
