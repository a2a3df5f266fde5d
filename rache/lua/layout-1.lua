--[[
  Records, or checks, the shard count of a sharded schedule, so that a scheduler of another
  count refuses to start (README.md, "Sharded schedules").

  Input:
    KEYS[1] layout key: hash, field 'shards' the shard count

    ARGV[1] the caller's shard count (an integer >= 2)
    ARGV[2] the unsharded schedule's queue key under the same prefix, or '' on Redis Cluster

  Output:
    the shard count as recorded; if none was: ARGV[1], now recorded, when the unsharded queue
    is empty, else '1' (nothing recorded)
]]
local rcall = redis.call
local layoutKey = KEYS[1]

--- @include "checkTypes"

local checks = {layoutKey, 'hash'}
if ARGV[2] ~= '' then
  checks[3], checks[4] = ARGV[2], 'zset'
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
if ARGV[2] ~= '' and rcall('ZCARD', ARGV[2]) > 0 then
  return '1'
end
rcall('HSET', layoutKey, 'shards', ARGV[1])
return ARGV[1]
