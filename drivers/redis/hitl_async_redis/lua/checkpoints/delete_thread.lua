-- KEYS: head nsset threads tinbox inbox inbox_data inbox_due ; ARGV: base thread_id channel
-- The lease hash stays: its token must never go back (a stale holder would pass the fence).
local base = ARGV[1]
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  for _, s in ipairs(SUFFIXES) do redis.call('UNLINK', base .. s .. ns) end
end
redis.call('UNLINK', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
set_inbox(KEYS[4], KEYS[5], KEYS[6], KEYS[7], 0, ARGV, 1, 0)
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
