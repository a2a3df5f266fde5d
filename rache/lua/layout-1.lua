--[[
  Records, or checks, how many shards a sharded schedule spreads over, so that a scheduler
  with another count refuses to start rather than miss the jobs of the other layout.

  Input:
    KEYS[1] layout key: hash, field 'shards' the shard count (absent when unsharded)

    ARGV[1] the shard count of the caller (an integer >= 2)
    ARGV[2] the unsharded schedule's queue key under the same prefix, or '' on Redis
            Cluster (where it lives in another slot, and where an unsharded schedule cannot
            use an untagged prefix anyway)

  Output:
    the schedule's shard count as recorded: ARGV[1] if it was unrecorded and the unsharded
    queue is empty (now recorded), '1' if it was unrecorded and the unsharded queue holds
    jobs (nothing recorded)
]]
local rcall = redis.call
local layoutKey = KEYS[1]

local recorded = rcall('HGETALL', layoutKey)  -- HGETALL and HSET: no more ACL rights
for i = 1, #recorded, 2 do
  if recorded[i] == 'shards' then
    return recorded[i + 1]
  end
end
if ARGV[2] ~= '' and rcall('ZCARD', ARGV[2]) > 0 then
  return '1'
end
rcall('HSET', layoutKey, 'shards', ARGV[1])
return ARGV[1]
