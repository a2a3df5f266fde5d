--[[
  Schedules many jobs at once, atomically for the batch: sets each one's due time and merges
  its data; a job later in the batch wins over an earlier one with the same id.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] wake-up channel: <prefix>wakeup
    ARGV[3 ..] per job: id, offset (milliseconds), precision ('s', 'ms' or 'at'), s, d,
               s field/value pairs to set, d fields to delete

  Output:
    the number of jobs scheduled
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobPrefix = ARGV[1]

--- @include "time"
--- @include "chunked"
--- @include "wakeup"
--- @include "checkTypes"

local checks = {queueKey, 'zset'}
local i = 3
while i <= #ARGV do
  local fields = 2 * tonumber(ARGV[i + 3]) + tonumber(ARGV[i + 4])
  if fields > 0 then
    checks[#checks + 1], checks[#checks + 2] = jobPrefix .. ARGV[i], 'hash'
  end
  i = i + 5 + fields
end
local wrong = checkTypes(checks)
if wrong then
  return wrong
end

local now = rcall('TIME')
local before = head(queueKey)
local earliest = nil
local members = {}
local count = 0
i = 3
while i <= #ARGV do
  local id = ARGV[i]
  local nset, ndel = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local due = timeString(dueTime(now, tonumber(ARGV[i + 1]), ARGV[i + 2]))
  if earliest == nil or tonumber(due) < earliest then
    earliest = tonumber(due)
  end
  members[#members + 1] = due
  members[#members + 1] = id
  i = i + 5
  chunked('HSET', jobPrefix .. id, ARGV, i, i + 2 * nset - 1)
  i = i + 2 * nset
  chunked('HDEL', jobPrefix .. id, ARGV, i, i + ndel - 1)
  i = i + ndel
  count = count + 1
end
chunked('ZADD', queueKey, members)
wakeup(ARGV[2], before, earliest)
return count
