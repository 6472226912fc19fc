-- KEYS: lease leases head cp blobs w wi ; ARGV: member owner ttl_ms graph ns cid ('' = head)
-- Returns {1, token, expires_ms, checkpoint as LOAD returns it (nil: none)}, or
-- {0, holder, expires_ms} when the thread is busy (nothing is read).
local r = acquire(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if r[1] == 1 then r[4] = load_checkpoint(3, ARGV[5], ARGV[6]) end
return r
