--[[
  Removes many jobs at once, their schedule entries, data, run tokens, rules and runs (the
  last step of rache.reshard, once the jobs are copied).

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[4] newest runs key: hash, job id -> its newest run (README.md, "Run history")
    KEYS[5] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] history prefix: a job's runs before its newest are the list ARGV[2] .. id
    ARGV[3 ..] the job ids
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the number of job ids given
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local runsKey = KEYS[3]
local lastKey = KEYS[4]
local jobPrefix = ARGV[1]
local historyPrefix = ARGV[2]

--- @include "chunked"
--- @include "checkTypes"
--- @include "calls"
--- @include "history"

local replay = callReplay()
if replay then
  return replay
end

local checks = {}  -- the job hashes; apart from the queue, for checkTypes' EXISTS
for i = 3, #ARGV do
  checks[#checks + 1], checks[#checks + 2] = jobPrefix .. ARGV[i], 'hash'
  checks[#checks + 1], checks[#checks + 2] = historyPrefix .. ARGV[i], 'list'
end
local wrong = checkTypes({queueKey, 'zset', rulesKey, 'hash', runsKey, 'hash', lastKey, 'hash'})
  or checkTypes(checks)
if wrong then
  return wrong
end

for i = 3, #ARGV do
  rcall('DEL', jobPrefix .. ARGV[i], historyPrefix .. ARGV[i])
end
chunked('ZREM', queueKey, ARGV, 3, #ARGV)
chunked('HDEL', runsKey, ARGV, 3, #ARGV)
chunked('HDEL', lastKey, ARGV, 3, #ARGV)
dropped(lastKey)
chunked('HDEL', rulesKey, ARGV, 3, #ARGV)
return callRecord(#ARGV - 2)
