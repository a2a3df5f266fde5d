--[[
  Ends the leases of claimed cron jobs: moves each to its next occurrence, but only while the
  caller's lease holds (the job is still due at the lease time and its rule still records that
  lease). A lease that expired and was claimed again, a job moved, deleted or given a new rule
  since: nothing changes, and the caller must not hand that occurrence out, for the holder of
  the newer claim (if any) will. So an occurrence is handed out by exactly one advance.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)
    KEYS[2] recurring key: hash, job id -> rule ('c|pending|lease|rest' for a cron job)

    ARGV[1 ..] triples: id, the lease (as claim-2.lua gave it), the next due time

  Output:
    {1 if the job was advanced else 0, ...}, one per triple
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]

--- @include "rules"

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
return result
