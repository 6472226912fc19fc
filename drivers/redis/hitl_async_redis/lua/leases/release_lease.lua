-- KEYS: lease leases ; ARGV: member token channel thread_id. Returns 1 when released.
if not release(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
