--[[
  Claims a batch of due jobs: finds them, removes or reschedules them and reads their data,
  in one atomic step, so no other poller can claim the same job.

  A pending_jobs() call is a series of batches. The first reads the server clock and fixes the
  call's cutoff; the next ones pass it back, so the call never takes a job it rescheduled
  itself: a rescheduled job whose new due time would not be after the cutoff (reschedule_in
  of 0 or less) is due again at the cutoff plus half a microsecond instead, for the next call.

  The job hashes are read at ARGV[1] .. id, a key this script derives: on Redis Cluster the
  prefix must carry a hash tag so that they share the queue's slot.

  Recurring jobs (an entry in KEYS[2], read with one HMGET per batch, and only when that hash
  exists) are never removed, and reschedule_in does not apply to them:
  - every-N ('e|start|every|misfire|grace', times in ms): the latest occurrence start + k *
    every in [due time, cutoff] is handed out, carrying its own due time (earlier ones were
    missed: they coalesce into it; with misfire 's' it is dropped when claimed more than
    grace ms late), and the job moves to the occurrence after it, in this same step;
  - cron ('c|pending|lease|...'): the job is leased, due again ARGV[6] ms from now (plus half
    a microsecond, a time no schedule_job gives), and the rule records the occurrence time
    pending (the due time, or the pending time of an expired lease nobody touched since)
    and the lease. The job comes back with the pending time as its due time; the caller
    computes what to hand out and the next occurrence, and advance-2.lua applies them only
    while this lease holds. Nothing is handed out to the user before that.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)
    KEYS[2] recurring key: hash, job id -> rule (see above)

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] the most jobs to claim (an integer >= 1)
    ARGV[3] cutoff: claim jobs due at or before it (Unix seconds); '' in the call's first batch
            means now, read from the server clock
    ARGV[4] reschedule offset from now, milliseconds; '' removes the claimed jobs instead
    ARGV[5] precision of the reschedule: 's' from the whole second, 'ms' from the millisecond
    ARGV[6] lease of a claimed cron job, milliseconds (an integer >= 1)

  Output:
    {cutoff, new due time of the batch or false if removed,
     earliest due time left in the queue after the claim or false if it is empty,
     false if the batch held no recurring job, else {number of jobs claimed,
       id, 'e', the due time it moved to, '' | id, 'c', the lease, the rule as now stored, ...},
     id, due time before the claim, n, field1, value1, ... fieldn, valuen,   (a job)
     ...}                                                                    (earliest first)
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local jobPrefix = ARGV[1]
local count = tonumber(ARGV[2])
local cutoff = ARGV[3]
local offset = ARGV[4]

--- @include "time"
--- @include "queueHead"
--- @include "readRules"
--- @include "claimRecurring"
--- @include "removeOrReschedule"
--- @include "appendJobs"

local now = rcall('TIME')
if cutoff == '' then
  cutoff = timeString(nowSeconds(now))
end

local found = rcall('ZRANGEBYSCORE', queueKey, '-inf', cutoff, 'WITHSCORES', 'LIMIT', 0, count)
if #found == 0 then
  return {cutoff, false, queueHead(queueKey), false}
end
local reply = {cutoff, false, false, false}

local ids = {}
for i = 1, #found, 2 do
  ids[#ids + 1] = found[i]
end

local plain = ids
local rules = readRules(rulesKey, ids)
if rules then
  plain, found, reply[4] = claimRecurring(
    queueKey, rulesKey, found, ids, rules, cutoff, now, tonumber(ARGV[6]))
end
reply[2] = removeOrReschedule(queueKey, plain, offset, ARGV[5], now, cutoff)
reply[3] = queueHead(queueKey)

return appendJobs(reply, found, jobPrefix)
