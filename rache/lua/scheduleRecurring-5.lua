--[[
  Schedules one recurring job: stores its rule, sets its due time to when the rule resumes and
  merges its data, atomically; the same rule declared again keeps the job as it runs.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] job key: hash, the job's data
    KEYS[3] recurring key: hash, job id -> rule
    KEYS[4] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[5] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] wake-up channel: <prefix>wakeup
    ARGV[2] job id
    ARGV[3] 'e' (every-N) or 'c' (cron)
    ARGV[4] the start, milliseconds since the epoch, or '' for now (the server clock)
    ARGV[5] the rule's tail: 'every|misfire|grace' or 'misfire|grace|offset|zone|expression'
    ARGV[6] every-N: the jitter offset, milliseconds, added to the start; cron: the first
            occurrence at or after the start (or now), milliseconds since the epoch, which
            the caller computes (Lua cannot evaluate a cron rule)
    ARGV[7] n, the number of fields to set
    ARGV[8 .. 7 + 2n] field, value pairs to set
    ARGV[8 + 2n ..] fields to delete
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the job's due time, Unix seconds, as text
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobKey = KEYS[2]
local rulesKey = KEYS[3]
local runsKey = KEYS[4]
local tail = ARGV[5]

--- @include "time"
--- @include "chunked"
--- @include "rules"
--- @include "wakeup"
--- @include "checkTypes"
--- @include "calls"
--- @include "runs"

local replay = callReplay()
if replay then
  return replay
end

local checks = {queueKey, 'zset', rulesKey, 'hash', runsKey, 'hash'}
if #ARGV > 7 then  -- data to set or delete
  checks[7], checks[8] = jobKey, 'hash'
end
local wrong = checkTypes(checks)
if wrong then
  return wrong
end

local nset = tonumber(ARGV[7])
chunked('HSET', jobKey, ARGV, 8, 7 + 2 * nset)
chunked('HDEL', jobKey, ARGV, 8 + 2 * nset, #ARGV)

-- The same rule again (a program declaring its schedule at every start): keep it as it runs.
-- Run twice, this changes nothing more (the data merged again is the same): no record.
local current = rcall('ZSCORE', queueKey, ARGV[2])
local old = rcall('HMGET', rulesKey, ARGV[2])[1]
local given = tonumber(ARGV[4])
if current and old then
  if ARGV[3] == 'e' then
    local oldStart, oldTail = splitEvery(old)
    if oldTail == tail and (not given or tonumber(oldStart) == given + tonumber(ARGV[6])) then
      return current
    end
  elseif not given then
    local _, _, oldTail = parseCron(old)
    if oldTail == tail then
      return current
    end
  end
end

local start = given
if not start then
  local now = rcall('TIME')
  start = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local rule
if ARGV[3] == 'e' then
  start = start + tonumber(ARGV[6])
  rule = everyRule(start, tail)
else
  start = tonumber(ARGV[6])
  rule = cronRule('', '', tail)
end
local due = timeString(start / 1000)
local before = head(queueKey)
rcall('HSET', rulesKey, ARGV[2], rule)
rcall('HDEL', runsKey, ARGV[2])  -- a plain job's run, if it was one: its occurrences name themselves
rcall('ZADD', queueKey, due, ARGV[2])
wakeup(ARGV[1], before, tonumber(due))
return callRecord(due)
