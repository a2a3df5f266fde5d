--[[
  Schedules one job: sets its due time on the server clock and merges its data, atomically.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] job key: hash, the job's data

    ARGV[1] wake-up channel: <prefix>wakeup
    ARGV[2] job id
    ARGV[3] offset from now, milliseconds (an integer; negative means already due)
    ARGV[4] precision: 's' or 'ms' (README.md, "Precision flags")
    ARGV[5] n, the number of fields to set
    ARGV[6 .. 5 + 2n] field, value pairs to set
    ARGV[6 + 2n ..] fields to delete

  Output:
    the due time, Unix seconds, as text
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobKey = KEYS[2]

--- @include "time"
--- @include "chunked"
--- @include "wakeup"
--- @include "checkTypes"

local checks = {queueKey, 'zset'}
if #ARGV > 5 then  -- data to set or delete
  checks[3], checks[4] = jobKey, 'hash'
end
local wrong = checkTypes(checks)
if wrong then
  return wrong
end

local due = dueTime(rcall('TIME'), tonumber(ARGV[3]), ARGV[4])
local before = head(queueKey)
rcall('ZADD', queueKey, timeString(due), ARGV[2])
wakeup(ARGV[1], before, tonumber(timeString(due)))

local nset = tonumber(ARGV[5])
chunked('HSET', jobKey, ARGV, 6, 5 + 2 * nset)
chunked('HDEL', jobKey, ARGV, 6 + 2 * nset, #ARGV)

return timeString(due)
