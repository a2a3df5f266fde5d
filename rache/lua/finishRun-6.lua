--[[
  Records one run's outcome: succeeded, failed (listed in the failures too), or a failed attempt;
  an outcome recorded stands; a job held by buffer_one is due again (README.md, "Run history").

  Input:
    KEYS[1] newest runs key: hash, job id -> its newest run
    KEYS[2] history key: list, the job's runs before its newest, newest first
    KEYS[3] failures key: list, recent failed runs, newest first
    KEYS[4] queue key: sorted set, job id -> due time
    KEYS[5] recurring key: hash, job id -> rule
    KEYS[6] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job id
    ARGV[2] the run's due time (as in its occurrence id)
    ARGV[3] the run's token (8 bytes), or '' for a run without one
    ARGV[4] outcome: 's' succeeded, 'f' failed, 'a' a failed attempt (retrying)
    ARGV[5] error text (bounded by the caller; '' for none)
    ARGV[6] failures kept (an integer >= 1)
    ARGV[7] wake-up channel: <prefix>wakeup (a held job brought back is published there)
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    1 if the run is known (recorded now, or its outcome was already in), 0 if not
]]
local lastKey = KEYS[1]
local historyKey = KEYS[2]
local failuresKey = KEYS[3]
local queueKey = KEYS[4]
local rulesKey = KEYS[5]
local jobId, due, token, outcome, errorText = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

--- @include "checkTypes"
--- @include "calls"
--- @include "history"
--- @include "rules"
--- @include "time"

local replay = callReplay()
if replay then
  return replay
end

local record, where = findRun(lastKey, historyKey, jobId, due, token)
if not record then
  return where or 0  -- an error naming a key, or no such run: never handed out, put back,
end                  -- deleted, swept, or past the history kept
local state, _, recordDue, claimed, deadline, attempts, _, name = parseRun(record)
if state ~= 'r' then
  return 1  -- an outcome is in: the first one stands
end
local wrong = checkTypes({failuresKey, 'list'})
if wrong then
  return wrong
end
-- A recurring job held by 'buffer_one' waits at this run's deadline: it comes back at once
-- (reads before the first write: README.md, "No partial writes").
local heldHere = false
if outcome ~= 'a' and token == '' then
  local score = redis.pcall('ZSCORE', queueKey, jobId)
  if type(score) == 'table' and score.err then
    return checkTypes({queueKey, 'zset'}) or score
  end
  if score and timeMs(score) == tonumber(deadline) then
    local rule = redis.pcall('HMGET', rulesKey, jobId)
    if rule.err then
      return checkTypes({rulesKey, 'hash'}) or rule
    end
    heldHere = rule[1] and ruleOverlap(rule[1]) == 'b' and
      (isEvery(rule[1]) or isIdleCron(rule[1]))
  end
end

local now = redis.call('TIME')
local nowMs = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local head = (token == '' and 'n' or 't' .. token) .. recordDue .. '|' .. claimed .. '|' ..
  deadline .. '|'
local updated
if outcome == 'a' then
  updated = 'r' .. head .. (tonumber(attempts) + 1) .. '||' .. name .. '|' .. errorText
else
  updated = outcome .. head .. attempts .. '|' .. nowMs .. '|' .. name .. '|' .. errorText
end
if where == true then
  redis.call('HSET', lastKey, jobId, updated)
else
  redis.call('LSET', historyKey, where, updated)
end
if outcome == 'f' then  -- '<length of id>:<id>' then the run's record
  local kept = tonumber(ARGV[6])
  local length = redis.call('LPUSH', failuresKey, #jobId .. ':' .. jobId .. updated)
  if length > kept then
    redis.call('LTRIM', failuresKey, 0, kept - 1)
  end
end
if heldHere then
  local at = timeString(nowSeconds(now))
  redis.call('ZADD', queueKey, at, jobId)
  redis.pcall('PUBLISH', ARGV[7], at)  -- a dispatcher asleep wakes (refused by an ACL: no matter)
end
return callRecord(1)
