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
  return {cutoff, false, nextDue(), false}
end
local reply = {cutoff, false, false, false}

local ids = {}
for i = 1, #found, 2 do
  ids[#ids + 1] = found[i]
end

-- The rules of the batch: one HMGET (per 1,000 jobs), and none while no job recurs.
local rules = false
if rcall('EXISTS', rulesKey) == 1 then
  local any = {}
  for i = 1, #ids, 1000 do
    local part = rcall('HMGET', rulesKey, unpack(ids, i, math.min(i + 999, #ids)))
    for j = 1, #part do
      if part[j] then
        any[i + j - 1] = part[j]
        rules = any
      end
    end
  end
end

local function push(list, a, b)
  list[#list + 1] = a
  list[#list + 1] = b
end

local plain = ids
if rules then
  -- Recurring jobs take their own way; the others (plain) go on as below.
  plain = {}
  local kept, recurring = {}, {#ids}
  local nowMs = math.floor(tonumber(cutoff) * 1000 + 0.0005)
  local lease = false
  for i = 1, #ids do
    local id, rule, due = ids[i], rules[i], found[2 * i]
    if not rule then
      plain[#plain + 1] = id
      push(kept, id, due)
    elseif string.sub(rule, 1, 1) == 'e' then
      local start, every, misfire, grace = string.match(rule, '^e|(%-?%d+)|(%d+)|(%a)|(%d+)$')
      start, every, grace = tonumber(start), tonumber(every), tonumber(grace)
      local pending = math.floor(tonumber(due) * 1000 + 0.5)
      local nextMs = start
      if nowMs >= start then
        local latest = start + math.floor((nowMs - start) / every) * every
        if latest < pending then  -- none in [pending, now]: resume at the first after
          local from = math.max(pending, nowMs + 1)
          nextMs = start + math.ceil((from - start) / every) * every
        else
          nextMs = latest + every
          if misfire == 'c' or nowMs - latest <= grace then
            push(kept, id, timeString(latest / 1000))
          end
        end
      end
      local moved = timeString(nextMs / 1000)
      rcall('ZADD', queueKey, moved, id)
      push(recurring, id, 'e')
      push(recurring, moved, '')
    else
      local pending, held, rest = string.match(rule, '^c|([^|]*)|([^|]*)|(.*)$')
      if pending == '' or tonumber(held) ~= tonumber(due) then
        pending = due  -- not leased, or moved since its lease: it resumes at its due time
      end
      if not lease then  -- half a microsecond: a time no schedule_job gives a job
        lease = timeString(dueTime(now, tonumber(ARGV[6]), 'ms') + 0.0000005)
      end
      local leased = 'c|' .. pending .. '|' .. lease .. '|' .. rest
      rcall('HSET', rulesKey, id, leased)
      rcall('ZADD', queueKey, lease, id)
      push(kept, id, pending)
      push(recurring, id, 'c')
      push(recurring, lease, leased)
    end
  end
  found = kept
  reply[4] = recurring
end

if #plain == 0 then
  -- every job of the batch recurs
elseif offset == '' then
  chunked('ZREM', queueKey, plain)
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
  for i = 1, #plain do
    members[2 * i - 1] = newDue
    members[2 * i] = plain[i]
  end
  chunked('ZADD', queueKey, members)
end
reply[3] = nextDue()

return appendJobs(reply, found, jobPrefix)
