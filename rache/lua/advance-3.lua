--[[
  Ends the leases of claimed cron jobs while the caller's lease holds: the job to its next due
  time, its rule idle, a run recorded per occurrence handed out (README.md, "Leases", "Runs").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] history prefix: a job's runs are the list ARGV[1] .. id
    ARGV[2] runs kept per job (an integer >= 0; 0 records none)
    ARGV[3] the poller's name, recorded in each run (no '|')
    ARGV[4 ..] quintuples: id, the lease (as claim-6.lua gave it), the next due time, the run
               timeout (ms), the occurrences handed out if the lease holds, oldest first,
               separated by spaces ('' for none)
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    {1 if the job was advanced else 0, ...}, one per quintuple
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local historyPrefix = ARGV[1]
local bound = tonumber(ARGV[2])
local name = ARGV[3]

--- @include "rules"
--- @include "checkTypes"
--- @include "calls"
--- @include "history"

local replay = callReplay()
if replay then
  return replay
end

local wrong = checkTypes({queueKey, 'zset', rulesKey, 'hash'})
if wrong then
  return wrong
end

local now = false
local result = {}
for i = 4, #ARGV, 5 do
  local id, lease, nextDue, timeout, occurrences = ARGV[i], ARGV[i + 1], ARGV[i + 2],
    ARGV[i + 3], ARGV[i + 4]
  local current = rcall('ZSCORE', queueKey, id)
  local rule = rcall('HMGET', rulesKey, id)[1]
  local held = false
  if current and rule and tonumber(current) == tonumber(lease) then
    local _, token, tail = parseCron(rule)
    if token == lease then
      rcall('ZADD', queueKey, nextDue, id)
      rcall('HSET', rulesKey, id, cronRule('', '', tail))
      held = true
      if bound > 0 and occurrences ~= '' then
        now = now or rcall('TIME')
        local suffix = runSuffix(now, tonumber(timeout), name)
        for due in string.gmatch(occurrences, '%S+') do
          pushRun(historyPrefix .. id, bound, nil, due, suffix)
        end
      end
    end
  end
  result[#result + 1] = held and 1 or 0
end
return callRecord(result)
