--[[
  Reads one job: its due time and its data, in one consistent snapshot.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)
    KEYS[2] job key: hash, the job's data

    ARGV[1] job id

  Output:
    {due time or false if not scheduled, {field1, value1, ...}}
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobKey = KEYS[2]

return {rcall('ZSCORE', queueKey, ARGV[1]), rcall('HGETALL', jobKey)}
