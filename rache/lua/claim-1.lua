--[[
  Claims a batch of due jobs: finds them, removes or reschedules them and reads their data,
  in one atomic step, so no other poller can claim the same job.

  A pending_jobs() call is a series of batches. The first reads the server clock and fixes the
  call's cutoff; the next ones pass it back, so the call never takes a job it rescheduled
  itself: a rescheduled job whose new due time would not be after the cutoff (reschedule_in
  of 0 or less) is due again at the cutoff plus half a microsecond instead, for the next call.

  The job hashes are read at ARGV[1] .. id, a key this script derives: on Redis Cluster the
  prefix must carry a hash tag so that they share the queue's slot.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] the most jobs to claim (an integer >= 1)
    ARGV[3] cutoff: claim jobs due at or before it (Unix seconds); '' in the call's first batch
            means now, read from the server clock
    ARGV[4] reschedule offset from now, milliseconds; '' removes the claimed jobs instead
    ARGV[5] precision of the reschedule: 's' from the whole second, 'ms' from the millisecond

  Output:
    {cutoff, new due time of the batch or false if removed,
     earliest due time left in the queue after the claim or false if it is empty,
     id, due time before the claim, n, field1, value1, ... fieldn, valuen,   (a job)
     ...}                                                                    (earliest first)
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobPrefix = ARGV[1]
local count = tonumber(ARGV[2])
local cutoff = ARGV[3]
local offset = ARGV[4]

--- @include "time"
--- @include "chunked"
--- @include "appendJobs"

local now = rcall('TIME')
if cutoff == '' then
  cutoff = timeString(tonumber(now[1]) + tonumber(now[2]) / 1000000)
end

-- The head of the queue once the claim is made: when a dispatcher should poll again.
local function nextDue()
  local head = rcall('ZRANGE', queueKey, 0, 0, 'WITHSCORES')
  return head[2] or false
end

local found = rcall('ZRANGEBYSCORE', queueKey, '-inf', cutoff, 'WITHSCORES', 'LIMIT', 0, count)
if #found == 0 then
  return {cutoff, false, nextDue()}
end
local reply = {cutoff, false, false}

local ids = {}
for i = 1, #found, 2 do
  ids[#ids + 1] = found[i]
end

if offset == '' then
  chunked('ZREM', queueKey, ids)
else
  local due = dueTime(now, tonumber(offset), ARGV[5])
  local limit = tonumber(cutoff)
  if due <= limit then
    -- Half a microsecond: after the cutoff (a whole microsecond), yet never a whole
    -- millisecond or second, so no schedule_job can give a job this very due time.
    due = limit + 0.0000005
  end
  local newDue = timeString(due)
  reply[2] = newDue
  local members = {}
  for i = 1, #ids do
    members[2 * i - 1] = newDue
    members[2 * i] = ids[i]
  end
  chunked('ZADD', queueKey, members)
end
reply[3] = nextDue()

return appendJobs(reply, found, jobPrefix)
