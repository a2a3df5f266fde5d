--[[
  Schedules many jobs at once: sets each one's due time on the server clock and merges its
  data, atomically for the whole batch. Jobs later in the batch win over earlier ones with
  the same id, as if scheduled one after the other.

  The job hashes are written at ARGV[1] .. id, a key this script derives: on Redis Cluster
  the prefix must carry a hash tag so that they share the queue's slot.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] wake-up channel: <prefix>wakeup
    ARGV[3 ..] per job:
      id,
      offset from now, milliseconds (an integer; negative means already due),
      precision: 's' to count from the server's whole second, 'ms' from its millisecond,
      s, the number of fields to set, d, the number of fields to delete,
      s field, value pairs to set, then d fields to delete

  Output:
    the number of jobs scheduled

  When a job of the batch becomes the earliest in the queue (the head moved earlier), its due
  time is published on the channel <prefix>wakeup, for sleeping dispatchers.
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobPrefix = ARGV[1]

--- @include "time"
--- @include "chunked"
--- @include "wakeup"

local now = rcall('TIME')
local before = head(queueKey)
local earliest = nil
local members = {}
local count = 0
local i = 3
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
