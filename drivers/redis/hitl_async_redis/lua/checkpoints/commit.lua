-- One commit, or a chain of commits of one thread (each one's expected head is the previous
-- one's id), all or nothing, then optionally the release of the lease.
-- KEYS: head nsset threads lease leases tinbox inbox inbox_data inbox_due,
--       then `cp idx blobs w wi` of each namespace listed in ARGV (in that order)
-- ARGV: ttl_ms thread_id base token channel release (0/1) lease_member nns [ns]*nns
--       ncommits, then the commits in chain order, each:
--       ns expected cid value nblobs ninbox nwrites
--       [field data]*nblobs [member data deadline]*ninbox [field data]*nwrites
-- expected/actual heads are '' (none) or '=' .. id; token '' = no lease; ninbox -1 = keep the
-- inbox. The lease is checked once, then every commit against the head its predecessors leave
-- and against the ids stored or earlier in the chain, before anything is written. Returns 1;
-- {3, current token} when the lease is lost; {4, i, refusal} when commit i is refused: the
-- actual head on a head conflict, 2 when checkpoint `cid` exists (ids are never reused).
-- Only 1 writes.
local lost = lease_lost(KEYS[4], ARGV[4])
if lost then return lost end
local nns = tonumber(ARGV[8])
local nskeys = {}
for j = 1, nns do
  local k = 9 + 5 * (j - 1)
  nskeys[ARGV[8 + j]] = {cp = KEYS[k + 1], idx = KEYS[k + 2], blobs = KEYS[k + 3],
    w = KEYS[k + 4], wi = KEYS[k + 5]}
end
local n = tonumber(ARGV[9 + nns])
local pos = 10 + nns
local chain, heads, ids = {}, {}, {}
for i = 1, n do
  local a = pos
  local nblobs, ninbox, nwrites = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]),
    tonumber(ARGV[a + 6])
  local c = {ns = ARGV[a], expected = ARGV[a + 1], cid = ARGV[a + 2], value = ARGV[a + 3],
    ninbox = ninbox, blobs = a + 7}
  c.k = nskeys[c.ns]
  c.inbox = c.blobs + 2 * nblobs
  c.writes = c.inbox + 3 * math.max(ninbox, 0)
  pos = c.writes + 2 * nwrites
  c.stop = pos - 1
  local head = heads[c.ns]
  if not head then
    head = redis.call('HGET', KEYS[1], c.ns)
    head = head and '=' .. head or ''
  end
  if head ~= c.expected then return {4, i, head} end
  local id = lp(c.ns) .. c.cid
  if ids[id] or redis.call('HEXISTS', c.k.cp, c.cid) == 1 then return {4, i, 2} end
  ids[id] = true
  heads[c.ns] = '=' .. c.cid
  chain[i] = c
end
local ttl = tonumber(ARGV[1])
for i = 1, n do
  local c = chain[i]
  local k = c.k
  redis.call('HSET', k.cp, c.cid, c.value)
  redis.call('ZADD', k.idx, 0, c.cid)
  if c.inbox > c.blobs then chunked('HSET', k.blobs, ARGV, c.blobs, c.inbox - 1) end
  if c.ninbox >= 0 then
    set_inbox(KEYS[6], KEYS[7], KEYS[8], KEYS[9], ttl, ARGV, c.inbox, c.ninbox)
  end
  if c.stop >= c.writes then
    drop_writes(k.w, k.wi, c.cid)
    add_writes(k.w, k.wi, ARGV, c.writes, c.stop)
  end
  redis.call('HSET', KEYS[1], c.ns, c.cid)
  redis.call('SADD', KEYS[2], c.ns)
end
if ttl > 0 then
  local base = ARGV[3]
  for _, ns in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    for _, s in ipairs(SUFFIXES) do redis.call('PEXPIRE', base .. s .. ns, ttl) end
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[6], ttl)
  redis.call('ZADD', KEYS[3], now_ms() + ttl, ARGV[2])
else
  redis.call('ZADD', KEYS[3], '+inf', ARGV[2])
end
if ARGV[6] == '1' then release(KEYS[4], KEYS[5], ARGV[7], ARGV[4]) end
redis.call('PUBLISH', ARGV[5], ARGV[2])
return 1
