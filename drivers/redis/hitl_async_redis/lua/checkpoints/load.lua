-- KEYS: head cp blobs w wi ; ARGV: ns cid ('' = the head)
return load_checkpoint(1, ARGV[1], ARGV[2])
