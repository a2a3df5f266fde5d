--[[
  Deletes one job: its schedule entry, its data, its run token, its recurrence rule and its
  runs (README.md, "Run history"). Deleting an unknown job does nothing.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] job key: hash, the job's data
    KEYS[3] recurring key: hash, job id -> rule
    KEYS[4] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[5] newest runs key: hash, job id -> its newest run (README.md, "Run history")
    KEYS[6] history key: list, the job's runs before its newest
    KEYS[7] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job id
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the number of things removed of the schedule entry, data and rule (0 to 3)
]]
local rcall = redis.call
local runsKey = KEYS[4]
local lastKey = KEYS[5]
local historyKey = KEYS[6]

--- @include "checkTypes"
--- @include "calls"
--- @include "runs"
--- @include "history"

local replay = callReplay()
if replay then
  return replay
end

local wrong = checkTypes({KEYS[1], 'zset', KEYS[2], 'hash', KEYS[3], 'hash', runsKey, 'hash',
  lastKey, 'hash', historyKey, 'list'})
if wrong then
  return wrong
end
rcall('HDEL', runsKey, ARGV[1])
if rcall('HDEL', lastKey, ARGV[1]) == 1 then
  dropped(lastKey)
end
rcall('DEL', historyKey)
return callRecord(
  rcall('ZREM', KEYS[1], ARGV[1]) + rcall('DEL', KEYS[2]) + rcall('HDEL', KEYS[3], ARGV[1]))
