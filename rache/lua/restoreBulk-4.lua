--[[
  Writes jobs exactly as export-3.lua read them: each due time as the very score, the data as
  the very bytes, the run token and the rule as they were (rache.reshard's copy, an import).

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[4] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] wake-up channel: <prefix>wakeup
    ARGV[3 ..] per job: id, due time (a score, or '' for data without a schedule entry), run
               token or '', rule or '', n, n field/value pairs
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the number of jobs written
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local runsKey = KEYS[3]
local jobPrefix = ARGV[1]

--- @include "chunked"
--- @include "wakeup"
--- @include "checkTypes"
--- @include "calls"

local replay = callReplay()
if replay then
  return replay
end

local checks = {}  -- the job hashes; apart from the other keys, for checkTypes' EXISTS
local earliest = nil
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i + 4])
  if n > 0 then
    checks[#checks + 1], checks[#checks + 2] = jobPrefix .. ARGV[i], 'hash'
  end
  local due = tonumber(ARGV[i + 1])  -- nil for ''
  if due and (earliest == nil or due < earliest) then
    earliest = due
  end
  i = i + 5 + 2 * n
end
local wrong = checkTypes({queueKey, 'zset', rulesKey, 'hash', runsKey, 'hash'})
  or checkTypes(checks)
if wrong then
  return wrong
end

local before = head(queueKey)
local count = 0
i = 3
while i <= #ARGV do
  local id, due, token, rule, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  if due ~= '' then
    rcall('ZADD', queueKey, due, id)
  end
  if token == '' then
    rcall('HDEL', runsKey, id)
  else
    rcall('HSET', runsKey, id, token)
  end
  if rule == '' then
    rcall('HDEL', rulesKey, id)
  else
    rcall('HSET', rulesKey, id, rule)
  end
  chunked('HSET', jobPrefix .. id, ARGV, i + 5, i + 4 + 2 * n)
  i = i + 5 + 2 * n
  count = count + 1
end
wakeup(ARGV[2], before, earliest)
return callRecord(count)
