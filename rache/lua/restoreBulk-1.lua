--[[
  Writes jobs exactly as export-1.lua read them: each due time as the very score, the data
  as the very bytes (the copy step of rache.reshard).

  Input:
    KEYS[1] queue key: sorted set, job id -> due time

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2 ..] per job: id, due time (as export-1.lua gave it), n, n field/value pairs
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the number of jobs written
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobPrefix = ARGV[1]

--- @include "chunked"
--- @include "checkTypes"
--- @include "calls"

local replay = callReplay()
if replay then
  return replay
end

local checks = {}  -- the job hashes; apart from the queue, for checkTypes' EXISTS
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  if n > 0 then
    checks[#checks + 1], checks[#checks + 2] = jobPrefix .. ARGV[i], 'hash'
  end
  i = i + 3 + 2 * n
end
local wrong = checkTypes({queueKey, 'zset'}) or checkTypes(checks)
if wrong then
  return wrong
end

local count = 0
i = 2
while i <= #ARGV do
  local id, due, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  rcall('ZADD', queueKey, due, id)
  chunked('HSET', jobPrefix .. id, ARGV, i + 3, i + 2 + 2 * n)
  i = i + 3 + 2 * n
  count = count + 1
end
return callRecord(count)
