local STORE_KEY = table.remove(KEYS)
local STORE_ID = table.remove(ARGV)
local STORE_FOUND = redis.call('GET', STORE_KEY)
if STORE_FOUND ~= STORE_ID then
  return redis.error_reply(STORE_LOST .. ' ' .. (STORE_FOUND or ''))
end
