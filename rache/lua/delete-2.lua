--[[
  Deletes one job: its schedule entry and its data. Deleting an unknown job does nothing.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)
    KEYS[2] job key: hash, the job's data

    ARGV[1] job id

  Output:
    the number of things removed (0, 1 or 2)
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobKey = KEYS[2]

return rcall('ZREM', queueKey, ARGV[1]) + rcall('DEL', jobKey)
