--[[
  Schedules one job: sets its due time on the server clock and merges its data, atomically; a
  new run of the job (README.md, "Runs").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] job key: hash, the job's data
    KEYS[3] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[4] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] wake-up channel: <prefix>wakeup
    ARGV[2] job id
    ARGV[3] offset from now, milliseconds (an integer; negative means already due)
    ARGV[4] precision: 's' or 'ms' (README.md, "Precision flags")
    ARGV[5] n, the number of fields to set
    ARGV[6 .. 5 + 2n] field, value pairs to set
    ARGV[6 + 2n ..] fields to delete
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the due time, Unix seconds, as text
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobKey = KEYS[2]
local runsKey = KEYS[3]

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

local nset = tonumber(ARGV[5])
local due = timeString(dueTime(rcall('TIME'), tonumber(ARGV[3]), ARGV[4]))

-- No TYPE here (README.md, "No partial writes"): only a key's first command can fail on its
-- type, and each key's runs before any write, pcall'd so that its error names the key.
local first = redis.pcall('ZRANGE', queueKey, 0, 0, 'WITHSCORES')  -- the head, as `head`
if first.err then
  return checkTypes({queueKey, 'zset'}) or first
end
local run = redis.pcall('HMGET', runsKey, ARGV[2])
if run.err then
  return checkTypes({runsKey, 'hash'}) or run
end
if #ARGV > 5 then  -- the data first: the fields to set, else those to delete
  local command, last = 'HSET', 5 + 2 * nset
  if nset == 0 then
    command, last = 'HDEL', #ARGV
  end
  local written = redis.pcall(command, jobKey, unpack(ARGV, 6, math.min(1005, last)))
  if type(written) == 'table' and written.err then
    return checkTypes({jobKey, 'hash'}) or written
  end
  chunked(command, jobKey, ARGV, 1006, last)
  if nset > 0 then
    chunked('HDEL', jobKey, ARGV, 6 + 2 * nset, #ARGV)
  end
end
rcall('ZADD', queueKey, due, ARGV[2])
rcall('HSET', runsKey, ARGV[2], runToken())
wakeup(ARGV[1], tonumber(first[2]), tonumber(due))

return callRecord(due)
