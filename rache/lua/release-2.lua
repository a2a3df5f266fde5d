--[[
  Puts back jobs that a pending_jobs() generator claimed but never handed out (its consumer
  stopped early), each only if nobody changed it since the claim: a rescheduled job still due
  at the claim's new time, or a removed job still off the schedule (and, if it had data then,
  still with data, so a job deleted meanwhile stays deleted; a job without data that was
  deleted meanwhile cannot be told apart, since its deletion changed nothing, and comes back).

  A recurring job goes back to the occurrence it was handed out for, if it is still due at
  the next occurrence the claim gave it (and, for a cron job, is not leased again): the rule
  resumes there, so that occurrence is handed out again, once.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)
    KEYS[2] recurring key: hash, job id -> rule

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id (hash tag on Redis Cluster)
    ARGV[2] the due time the claim gave the jobs, or '' if it removed them
    ARGV[3] n, the number of jobs that do not recur
    ARGV[4 .. 3 + 3n] triples: id, due time before the claim, '1' if the job had data else '0'
    ARGV[4 + 3n ..] recurring jobs, triples: id, the occurrence it was handed out for, the
                    due time the claim (or advance-2.lua) gave it

  Output:
    the number of jobs put back

  Jobs put back are due (they were claimed): if one is now the earliest in the queue, its due
  time is published on <prefix>wakeup, so that a sleeping dispatcher takes it at once.
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local jobPrefix = ARGV[1]
local claimedDue = ARGV[2]
local last = 3 + 3 * tonumber(ARGV[3])

--- @include "rules"
--- @include "wakeup"

local before = head(queueKey)
local earliest = nil

local restored = 0
local function putBack(id, due)
  rcall('ZADD', queueKey, due, id)
  restored = restored + 1
  if earliest == nil or tonumber(due) < earliest then
    earliest = tonumber(due)
  end
end

for i = 4, last, 3 do
  local id, due, hadData = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current = rcall('ZSCORE', queueKey, id)
  local unchanged
  if claimedDue == '' then
    unchanged = not current and (hadData == '0' or rcall('EXISTS', jobPrefix .. id) == 1)
  else
    unchanged = current and tonumber(current) == tonumber(claimedDue)
  end
  if unchanged then
    putBack(id, due)
  end
end
for i = last + 1, #ARGV, 3 do
  local id, due, moved = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current = rcall('ZSCORE', queueKey, id)
  local rule = rcall('HMGET', rulesKey, id)[1]
  if current and rule and tonumber(current) == tonumber(moved)
      and (isEvery(rule) or isIdleCron(rule)) then
    putBack(id, due)
  end
end
wakeup(queueKey, before, earliest)
return restored
