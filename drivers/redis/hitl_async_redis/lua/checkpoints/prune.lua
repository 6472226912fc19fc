-- KEYS: head nsset ; ARGV: base keep_last (0 = unset) cutoff ('' = unset). Returns #deleted.
local base = ARGV[1]
local keep_last = tonumber(ARGV[2])
local cutoff = ARGV[3]
local removed = 0
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local cp, idx, blobs = base .. ':cp:' .. ns, base .. ':idx:' .. ns, base .. ':blobs:' .. ns
  local w, wi = base .. ':w:' .. ns, base .. ':wi:' .. ns
  local head = redis.call('HGET', KEYS[1], ns)
  local ids = redis.call('ZRANGE', idx, 0, -1)
  local n = #ids
  local live = {}
  local gone = {}
  local unsure = false  -- a damaged checkpoint: which blobs it needs is unknown
  for i, cid in ipairs(ids) do
    local value = redis.call('HGET', cp, cid)
    local part = value and lua_part(value)
    local keep = cid == head or (keep_last > 0 and i > n - keep_last)
      or (cutoff ~= '' and part and bytes_gt(part[3], cutoff))
    if value and not part then keep, unsure = true, true end  -- damaged: keep it and its blobs
    if keep then
      if part then
        for ch, ver in pairs(part[1]) do live[lp(ch) .. ver] = true end
      end
    else
      gone[#gone + 1] = cid
      drop_writes(w, wi, cid)
    end
  end
  if #gone > 0 then
    chunked('HDEL', cp, gone)
    chunked('ZREM', idx, gone)
    removed = removed + #gone
  end
  local orphans = {}
  if not unsure then
    for _, f in ipairs(redis.call('HKEYS', blobs)) do
      if not live[f] then orphans[#orphans + 1] = f end
    end
  end
  if #orphans > 0 then chunked('HDEL', blobs, orphans) end
end
return removed
