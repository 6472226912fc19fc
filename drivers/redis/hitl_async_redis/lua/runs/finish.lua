-- KEYS: run ; ARGV: prefix rid has_owner owner status has_result result has_error error
-- Returns 1 when the status changed. Wakes the request's queue when it is given back or was
-- running (then also the queues of its thread's other pending requests: it blocked them).
local prefix, rid, status = ARGV[1], ARGV[2], ARGV[5]
local h = redis.call('HMGET', KEYS[1], 'status', 'owner', 'qhex', 'thex', 'member')
if not h[1] then return 0 end
if ARGV[3] == '0' then
  if h[1] ~= 'queued' then return 0 end
elseif h[1] ~= 'running' or h[2] ~= ARGV[4] then
  return 0
end
local zkey = prefix .. ':runs:' .. h[3]
local truns = prefix .. ':{t' .. h[4] .. '}:runs'
local queues = {}
if status == 'queued' or h[1] == 'running' then queues[h[3]] = true end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'queued')
  redis.call('HDEL', KEYS[1], 'owner', 'claim')
  -- given back: that claim was not an attempt
  if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') > 0 then
    redis.call('HINCRBY', KEYS[1], 'attempts', -1)
  end
  redis.call('ZADD', zkey, 0, h[5])
  redis.call('SADD', truns, rid)
else
  redis.call('HSET', KEYS[1], 'status', status)
  redis.call('HDEL', KEYS[1], 'claim')
  if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'result', ARGV[7])
  else redis.call('HDEL', KEYS[1], 'result') end
  if ARGV[8] == '1' then redis.call('HSET', KEYS[1], 'error', ARGV[9])
  else redis.call('HDEL', KEYS[1], 'error') end
  redis.call('ZREM', zkey, h[5])
  redis.call('SREM', truns, rid)
  if h[1] == 'running' then
    for _, other in ipairs(redis.call('SMEMBERS', truns)) do
      local q = redis.call('HGET', prefix .. ':run:' .. other, 'qhex')
      if q then queues[q] = true end
    end
  end
end
for q in pairs(queues) do wake(prefix, q, rid) end
return 1
