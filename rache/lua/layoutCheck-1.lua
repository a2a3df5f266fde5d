--[[
  Reads the shard count recorded for a schedule, writing nothing (HMGET only: a read-only user
  may run it): an unsharded scheduler's check before its first call ("Sharded schedules").

  Input:
    KEYS[1] layout key: hash, field 'shards' the shard count (absent when unsharded)

  Output:
    the shard count recorded, or '1' if none is
]]
return redis.call('HMGET', KEYS[1], 'shards')[1] or '1'
