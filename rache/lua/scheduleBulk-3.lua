--[[
  Schedules many jobs at once, atomically for the batch: sets each one's due time, merges its
  data and starts its run (README.md, "Runs"); a later job wins over an earlier same id.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[3] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] wake-up channel: <prefix>wakeup
    ARGV[3 ..] per job: id, offset (milliseconds), precision ('s', 'ms' or 'at'), s, d,
               s field/value pairs to set, d fields to delete
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the number of jobs scheduled
]]
local rcall = redis.call
local queueKey = KEYS[1]
local runsKey = KEYS[2]
local jobPrefix = ARGV[1]

--- @include "time"
--- @include "chunked"
--- @include "wakeup"
--- @include "checkTypes"
--- @include "calls"
--- @include "runs"

local replay = callReplay()
if replay then
  return replay
end

-- One pass reads the batch; the types are checked before the first write (README.md, "No
-- partial writes"): the queue, and the hash of each job with data to set or delete.
local now = rcall('TIME')
local earliest = nil
local members = {}  -- due, id, ...: for one ZADD
local runs = {}  -- id, token, ...: for one HSET
local token = runToken()
local hashes, at, ndels = {}, {}, {}  -- {key, 'hash', ...} of the jobs with data; where it is
local count = 0
local i = 3
while i <= #ARGV do
  local nset, ndel = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local due = timeString(dueTime(now, tonumber(ARGV[i + 1]), ARGV[i + 2]))
  if earliest == nil or tonumber(due) < earliest then
    earliest = tonumber(due)
  end
  members[#members + 1] = due
  members[#members + 1] = ARGV[i]
  runs[#runs + 1], runs[#runs + 2] = ARGV[i], token
  if nset + ndel > 0 then
    local n = #hashes
    hashes[n + 1], hashes[n + 2] = jobPrefix .. ARGV[i], 'hash'
    at[n + 1], at[n + 2] = i + 5, i + 5 + 2 * nset  -- where its fields to set, to delete start
    ndels[#ndels + 1] = ndel
  end
  i = i + 5 + 2 * nset + ndel
  count = count + 1
end
local wrong = checkTypes({queueKey, 'zset', runsKey, 'hash'}) or checkTypes(hashes)
if wrong then
  return wrong
end

local before = head(queueKey)
for j = 1, #hashes, 2 do  -- in batch order: a later job with the same id wins
  local set, delete = at[j], at[j + 1]
  chunked('HSET', hashes[j], ARGV, set, delete - 1)
  chunked('HDEL', hashes[j], ARGV, delete, delete + ndels[(j + 1) / 2] - 1)
end
chunked('ZADD', queueKey, members)
chunked('HSET', runsKey, runs)
wakeup(ARGV[2], before, earliest)
return callRecord(count)
