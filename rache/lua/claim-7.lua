--[[
  Claims a batch of due jobs in one atomic step: removes or reschedules the plain ones, moves
  every-N jobs on, leases cron jobs, reads the data, records runs; bad data, memory, clock: no block.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[4] aside key: hash, job id -> due time, the jobs set aside (README.md, "Set-aside jobs")
    KEYS[5] clock mark key: string (README.md, "Clock jumps")
    KEYS[6] newest runs key: hash, job id -> its newest run (README.md, "Run history")
    KEYS[7] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] the most jobs to claim (an integer >= 1)
    ARGV[3] cutoff: claim jobs due at or before it, as the call's first batch gave it; '' reads
            the server clock
    ARGV[4] reschedule offset from now, milliseconds; '' removes the plain jobs instead
    ARGV[5] precision of the reschedule: 's' or 'ms'
    ARGV[6] lease of a cron job, milliseconds (an integer >= 1)
    ARGV[7] history prefix: a job's runs before its newest are the list ARGV[7] .. id
    ARGV[8] runs kept per job (an integer >= 0; 0 records none)
    ARGV[9] the poller's name, recorded in each run (no '|')
    ARGV[10] a plain job's run timeout, milliseconds: its run's deadline is the claim's now plus it
    ARGV[11] how long runs of jobs no longer scheduled stay, milliseconds (the sweep's ttl)
    ARGV[12] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    {cutoff, new due time or false, head after the claim or false, recurring or false,
     run tokens or false, id, due time, n, field1, value1, ... fieldn, valuen, ...}
    (README.md, "claim-7.lua")
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local runsKey = KEYS[3]
local lastKey = KEYS[6]
local jobPrefix = ARGV[1]
local count = tonumber(ARGV[2])
local cutoff = ARGV[3]
local offset = ARGV[4]
local clockKey = KEYS[5]

--- @include "time"
--- @include "queueHead"
--- @include "readRules"
--- @include "claimRecurring"
--- @include "removeOrReschedule"
--- @include "appendJobs"
--- @include "checkTypes"
--- @include "calls"
--- @include "runs"
--- @include "history"
--- @include "memory"
--- @include "clockJump"

-- A claim sent again (its reply was lost) hands out the same batch: the same jobs at the same
-- due times, their data read again; it changes nothing.
local seen = callSeen()
if type(seen) == 'string' then
  local record = cmsgpack.unpack(seen)  -- {cutoff, new due, recurring, tokens, jobs}
  local again = {record[1], record[2], queueHead(queueKey), record[3], record[4]}
  local read, unreadable = appendJobs(again, record[5], jobPrefix)
  return read or unreadable
elseif seen then
  return seen
end

local now = rcall('TIME')
if cutoff == '' then
  cutoff = timeString(nowSeconds(now))
end

-- Every read that can fail comes before the first write (README.md, "No partial writes").
local mark, wrongMark = readMark(clockKey)
if wrongMark then
  return wrongMark
end
local nowMs = timeMs(nowSeconds(now))
if clockWentBack(mark, nowMs) then  -- this call re-aims, and hands out nothing
  local wrong = checkTypes({queueKey, 'zset', rulesKey, 'hash'})
  if wrong then
    return wrong
  end
  local count = reaim(queueKey, rulesKey, clockKey, nowMs, cutoffMs(cutoff), tonumber(ARGV[6]))
  if count then  -- else refused (memory pressure): nothing written, the claim goes on
    local reply = {cutoff, false, queueHead(queueKey), false, false}
    if count > 0 then
      callRecord(nil, cmsgpack.pack({cutoff, false, false, false, {}}))
    end
    return reply
  end
end
local found = redis.pcall(
  'ZRANGEBYSCORE', queueKey, '-inf', cutoff, 'WITHSCORES', 'LIMIT', 0, count)
if found.err then
  return checkTypes({queueKey, 'zset'}) or found
end
if #found == 0 then
  return {cutoff, false, queueHead(queueKey), false, false}
end
local reply = {cutoff, false, false, false, false}
local wrong = checkTypes({rulesKey, 'hash'})
if wrong then
  return wrong
end

local ids = {}
for i = 1, #found, 2 do
  ids[#ids + 1] = found[i]
end

-- The jobs' data too, before the first write: when a job of the batch recurs, all of it by id
-- (which jobs are handed out is known after the claim); else straight into the reply.
local rules = readRules(rulesKey, ids)
-- Under memory pressure the claim adds nothing (README.md, "Memory pressure"): probed when
-- the batch would add (a recurring job, a reschedule), before the first write.
local full = (rules or offset ~= '') and memoryFull(queueKey, found[1], found[2])
local byId = rules or full
local read, unreadable
if byId then
  read, unreadable = readJobs(jobPrefix, ids)
else
  read, unreadable = appendJobs(reply, found, jobPrefix)
end
if not read then
  return unreadable
end
local runs, withRuns = readRuns(runsKey, ids)  -- the plain jobs' runs: only they have one
if not runs then
  return withRuns
end
local bound = tonumber(ARGV[8])
local newest, withNewest, place  -- each job's newest run, for the batch (README.md, "Run history")
if bound > 0 then
  newest, withNewest, place = readNewest(lastKey, ids)
  if not newest then
    return withNewest
  end
end

local plain = ids
if byId then  -- the overlap policies read and record runs only where runs are recorded
  local c = {queue = queueKey, rules = rulesKey, aside = KEYS[4], clock = clockKey, mark = mark,
             cutoff = cutoff, now = now, leaseMs = tonumber(ARGV[6]), full = full, offset = offset,
             runs = bound > 0 and {last = lastKey, prefix = ARGV[7], batch = newest, bound = bound,
                                   name = ARGV[9], now = now}}
  plain, found, reply[4] = claimRecurring(c, found, ids, rules or {})
  if not plain then
    return found
  end
end
reply[2] = removeOrReschedule(queueKey, plain, offset, ARGV[5], now, cutoff)
if withRuns > 0 then  -- each plain job's token, in reply order; gone with the job, if it goes
  local isPlain = false  -- without recurring jobs in the batch, every job is plain
  if byId then
    isPlain = {}
    for i = 1, #plain do
      isPlain[plain[i]] = true
    end
  end
  local tokens, done = {}, {}
  for i = 1, #found, 2 do
    local id = found[i]
    local token = runs[id]
    if token and isPlain and not isPlain[id] then  -- a recurring job moved by schedule_job:
      token = nil                                  -- its occurrences name themselves
      done[#done + 1] = id
    elseif token and offset == '' then  -- off the queue (a put-back restores it)
      done[#done + 1] = id
    end
    tokens[#tokens + 1] = token or false
  end
  reply[5] = tokens
  if #done > 0 then
    chunked('HDEL', runsKey, done)
  end
end
if bound > 0 then  -- a run per job handed out, all in one HSET (README.md, "Run history")
  local historyPrefix, name = ARGV[7], ARGV[9]
  local suffix = runSuffix(now, tonumber(ARGV[10]), name)
  local fields, n = {SWEEP_FIELD, false}, 2  -- the sweep's place first, if it moves
  local before = withNewest > 0 and newest  -- a job run before: its newest joins its list
  local ruleOf, suffixes = {}, {}
  if rules then
    for i = 1, #ids do
      if rules[i] then
        ruleOf[ids[i]] = rules[i]
      end
    end
  end
  for i = 1, #found, 2 do
    local id = found[i]
    local rule, record = rules and ruleOf[id], false
    if not rule then
      local token = runs[id]
      record = token and ('rt' .. token .. found[i + 1] .. suffix)
        or ('rn' .. found[i + 1] .. suffix)
    elseif isEvery(rule) then  -- its run timeout: the rule's, or its period, at least a minute
      local _, _, _, _, _, timeout = parseEvery(rule)
      local everySuffix = suffixes[timeout] or runSuffix(now, timeout, name)
      suffixes[timeout] = everySuffix
      record = 'rn' .. found[i + 1] .. everySuffix
    end  -- a cron job is leased, not handed out: its advance records its runs
    if record then
      fields[n + 1], fields[n + 2], n = id, record, n + 2
      if before and before[id] then
        keepOlder(historyPrefix .. id, before[id], bound)
      end
    end
  end
  if n > 2 then  -- and a step of the sweep of old runs, its place written with the runs
    local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    fields[2] = sweepRuns(lastKey, queueKey, historyPrefix, place, nowMs, tonumber(ARGV[11]),
      2 * count + SWEEP_LEAST)
    setNewest(lastKey, fields, fields[2] and 1 or 3)
  end
end
reply[3] = queueHead(queueKey)
callRecord(nil, cmsgpack.pack({reply[1], reply[2], reply[4], reply[5], found}))

return byId and appendJobs(reply, found, jobPrefix, read) or reply
