-- KEYS: nsset w wi lease tinbox inbox inbox_data inbox_due
-- ARGV: ns ttl_ms token thread_id channel ninbox [member data deadline]*ninbox [field data]*
-- Returns 1, or {3, current token} (nothing written) when the lease is lost.
local lost = lease_lost(KEYS[4], ARGV[3])
if lost then return lost end
local ttl = tonumber(ARGV[2])
local ninbox = tonumber(ARGV[6])
local first = 7
if ninbox >= 0 then
  set_inbox(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ttl, ARGV, first, ninbox)
  first = first + 3 * ninbox
end
if #ARGV >= first then
  add_writes(KEYS[2], KEYS[3], ARGV, first, #ARGV)
  redis.call('SADD', KEYS[1], ARGV[1])
  if ttl > 0 then
    for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
