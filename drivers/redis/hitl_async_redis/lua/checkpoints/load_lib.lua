-- The head of namespace `ns` (or checkpoint `cid`, '' = the head) as `gather` returns it, or
-- false when there is none. `k` is the KEYS index of `head cp blobs w wi`.
local function load_checkpoint(k, ns, cid)
  if cid == '' then
    cid = redis.call('HGET', KEYS[k], ns)
    if not cid then return false end
  end
  local value = redis.call('HGET', KEYS[k + 1], cid)
  if not value then return false end
  local part = lua_part(value)
  if not part then return damaged(cid, value) end
  return gather(cid, value, part, KEYS[k + 2], KEYS[k + 3], KEYS[k + 4])
end
