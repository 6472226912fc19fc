-- KEYS: cp idx blobs w wi ; ARGV: max_bound limit (0 = all) nfilter [key canonical_value]*
local limit = tonumber(ARGV[2])
local nfilter = tonumber(ARGV[3])
local filter = {}
for i = 1, nfilter do filter[ARGV[2 + 2 * i]] = ARGV[3 + 2 * i] end
local chunk = 128
if limit > 0 and nfilter == 0 and limit < chunk then chunk = limit end
local max = ARGV[1]
local out = {}
while true do
  local ids = redis.call('ZREVRANGEBYLEX', KEYS[2], max, '-', 'LIMIT', 0, chunk)
  for _, cid in ipairs(ids) do
    local value = redis.call('HGET', KEYS[1], cid)
    if value then
      local part = lua_part(value)
      local index = part and part[2] or {}
      local ok = true
      if not part then
        out[#out + 1] = damaged(cid, value)  -- reported, whatever the filter
        ok = false
        if limit > 0 and #out >= limit then return out end
      end
      for k, v in pairs(part and filter or {}) do
        if index[k] ~= v then
          ok = false
          break
        end
      end
      if ok then
        out[#out + 1] = gather(cid, value, part, KEYS[3], KEYS[4], KEYS[5])
        if limit > 0 and #out >= limit then return out end
      end
    end
  end
  if #ids < chunk then break end
  max = '(' .. ids[#ids]
end
return out
