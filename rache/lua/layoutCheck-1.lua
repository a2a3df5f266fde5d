--[[
  Reads the shard count recorded for a schedule, and writes nothing: the check that a
  scheduler without shards makes before its first call, so that it refuses a sharded
  schedule rather than see it empty. (A sharded scheduler records or checks its count with
  layout-1.lua.) HMGET only: a read-only user of the schedule may run it.

  Input:
    KEYS[1] layout key: hash, field 'shards' the shard count (absent when unsharded)

  Output:
    the shard count recorded, or '1' if none is
]]
return redis.call('HMGET', KEYS[1], 'shards')[1] or '1'
