-- KEYS: head. The hex namespaces that have a head (so a checkpoint) in the thread.
return redis.call('HKEYS', KEYS[1])
