local MAXLEN = 1000

-- Append a wake-up entry to the stream of queue `qhex`.
local function wake(prefix, qhex, rid)
  redis.call('XADD', prefix .. ':q:' .. qhex, 'MAXLEN', '~', MAXLEN, '*', 'r', rid)
end

-- The first runnable request of the queue zset `zkey` in (created_at, id) order: queued, or
-- running with an expired claim, and its thread has no running request with a live claim.
-- Returns its key (or nil) and the earliest future claim expiry seen (ms, -1 if none), when a
-- blocked or reclaimable request may become runnable.
local function runnable(zkey, prefix, now)
  local busy, stale = {}, {}
  local wake_at = -1
  local function note(expires)
    if expires >= now and (wake_at < 0 or expires < wake_at) then wake_at = expires end
  end
  local function is_busy(thex)
    if busy[thex] == nil then
      busy[thex] = false
      for _, rid in ipairs(redis.call('SMEMBERS', prefix .. ':{t' .. thex .. '}:runs')) do
        local h = redis.call('HMGET', prefix .. ':run:' .. rid, 'status', 'claim')
        local expires = tonumber(h[2]) or 0
        if h[1] == 'running' and expires >= now then
          busy[thex] = true
          note(expires)
        end
      end
    end
    return busy[thex]
  end
  local found = nil
  local min = '-'
  while not found do
    local ms = redis.call('ZRANGEBYLEX', zkey, min, '+', 'LIMIT', 0, 100)
    for _, m in ipairs(ms) do
      local key = prefix .. ':run:' .. string.match(m, '([^.]*)$')
      local h = redis.call('HMGET', key, 'status', 'claim', 'thex')
      local expires = tonumber(h[2]) or 0
      if h[1] == 'queued' or (h[1] == 'running' and expires < now) then
        if not is_busy(h[3]) then
          found = key
          break
        end
      elseif h[1] == 'running' then
        note(expires)
      else
        stale[#stale + 1] = m
      end
    end
    if #ms < 100 then break end
    min = '(' .. ms[#ms]
  end
  if #stale > 0 then chunked('ZREM', zkey, stale) end
  return found, wake_at
end
