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
