--[[
  Records, or checks, the shard count of a sharded schedule, so that a scheduler of another
  count refuses to start (README.md, "Sharded schedules").

  Input:
    KEYS[1] layout key: hash, field 'shards' the shard count
    KEYS[2] the unsharded schedule's queue key under the same prefix; on Redis Cluster the
            layout key again (that queue lives in another slot)

    ARGV[1] the caller's shard count (an integer >= 2)

  Output:
    the shard count as recorded; if none was: ARGV[1], now recorded, when the unsharded queue
    is empty, else '1' (nothing recorded)
]]
local rcall = redis.call
local layoutKey = KEYS[1]
local unsharded = KEYS[2] ~= KEYS[1] and KEYS[2]  -- on Redis Cluster it is in another slot

--- @include "checkTypes"

local checks = {layoutKey, 'hash'}
if unsharded then
  checks[3], checks[4] = unsharded, 'zset'
end
local wrong = checkTypes(checks)
if wrong then
  return wrong
end

local recorded = rcall('HGETALL', layoutKey)  -- HGETALL and HSET: no more ACL rights
for i = 1, #recorded, 2 do
  if recorded[i] == 'shards' then
    return recorded[i + 1]
  end
end
if unsharded and rcall('ZCARD', unsharded) > 0 then
  return '1'
end
rcall('HSET', layoutKey, 'shards', ARGV[1])
return ARGV[1]
