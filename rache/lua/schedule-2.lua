--[[
  Schedules one job: sets its due time on the server clock and merges its data, atomically.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] job key: hash, the job's data

    ARGV[1] job id
    ARGV[2] offset from now, milliseconds (an integer; negative means already due)
    ARGV[3] precision: 's' or 'ms' (README.md, "Precision flags")
    ARGV[4] n, the number of fields to set
    ARGV[5 .. 4 + 2n] field, value pairs to set
    ARGV[5 + 2n ..] fields to delete

  Output:
    the due time, Unix seconds, as text
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobKey = KEYS[2]

--- @include "time"
--- @include "chunked"
--- @include "wakeup"

local due = dueTime(rcall('TIME'), tonumber(ARGV[2]), ARGV[3])
local before = head(queueKey)
rcall('ZADD', queueKey, timeString(due), ARGV[1])
wakeup(queueKey, before, tonumber(timeString(due)))

local nset = tonumber(ARGV[4])
chunked('HSET', jobKey, ARGV, 5, 4 + 2 * nset)
chunked('HDEL', jobKey, ARGV, 5 + 2 * nset, #ARGV)

return timeString(due)
