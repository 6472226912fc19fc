-- KEYS: lease leases ; ARGV: member owner ttl_ms graph
-- Returns {1, token, expires_ms}, or {0, holder, expires_ms} when the thread is busy.
return acquire(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
