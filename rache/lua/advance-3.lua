--[[
  Ends the leases of claimed cron jobs: moves each job to its next due time and makes its rule
  idle, but only while the caller's lease holds (README.md, "Leases and the holder-only advance").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1 ..] triples: id, the lease (as claim-4.lua gave it), the next due time
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    {1 if the job was advanced else 0, ...}, one per triple
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]

--- @include "rules"
--- @include "checkTypes"
--- @include "calls"

local replay = callReplay()
if replay then
  return replay
end

local wrong = checkTypes({queueKey, 'zset', rulesKey, 'hash'})
if wrong then
  return wrong
end

local result = {}
for i = 1, #ARGV, 3 do
  local id, lease, nextDue = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current = rcall('ZSCORE', queueKey, id)
  local rule = rcall('HMGET', rulesKey, id)[1]
  local held = false
  if current and rule and tonumber(current) == tonumber(lease) then
    local _, token, tail = parseCron(rule)
    if token == lease then
      rcall('ZADD', queueKey, nextDue, id)
      rcall('HSET', rulesKey, id, cronRule('', '', tail))
      held = true
    end
  end
  result[#result + 1] = held and 1 or 0
end
return callRecord(result)
