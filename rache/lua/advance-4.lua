--[[
  Ends the leases of claimed cron jobs while the caller's lease holds: the job to its next due
  time, its rule idle, a run per occurrence handed out (README.md, "Leases", "Overlap").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] newest runs key: hash, job id -> its newest run (README.md, "Run history")
    KEYS[4] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] history prefix: a job's runs before its newest are the list ARGV[1] .. id
    ARGV[2] runs kept per job (an integer >= 0; 0 records none)
    ARGV[3] the poller's name, recorded in each run (no '|')
    ARGV[4 ..] quintuples: id, the lease (as claim-7.lua gave it), the next due time, the run
               timeout (ms), the occurrences handed out if the lease holds, oldest first,
               separated by spaces ('' for none; one at most for a rule whose overlap is
               not 'allow')
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    {outcome, ...}, one per quintuple: 1 advanced (hand its occurrences out), 0 its lease lost,
    2 advanced, its occurrence skipped, or a time: held until then (README.md, "Overlap")
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local lastKey = KEYS[3]
local historyPrefix = ARGV[1]
local bound = tonumber(ARGV[2])
local name = ARGV[3]

--- @include "rules"
--- @include "time"
--- @include "checkTypes"
--- @include "calls"
--- @include "history"
--- @include "overlap"

local replay = callReplay()
if replay then
  return replay
end

local wrong = checkTypes({queueKey, 'zset', rulesKey, 'hash', lastKey, 'hash'})
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
      held = 1
      if bound > 0 and occurrences ~= '' then
        now = now or rcall('TIME')
        local overlap = cronOptions(tail)
        local runs = overlap ~= 'a' and
          {last = lastKey, prefix = historyPrefix, bound = bound, name = name, now = now}
        local heldUntil = overlap == 'b' and overlapBuffer(runs, id)
        if heldUntil then  -- held until the running run ends, then handed out
          nextDue = timeString(heldUntil / 1000)
          held = nextDue
        elseif overlap == 'k' and overlapSkip(runs, id, occurrences) then
          held = 2
        else
          local suffix = runSuffix(now, tonumber(timeout), name)
          local newest = rcall('HMGET', lastKey, id)[1]  -- before it, newest first in its list
          for due in string.gmatch(occurrences, '%S+') do
            if newest then
              keepOlder(historyPrefix .. id, newest, bound)
            end
            newest = 'rn' .. due .. suffix
          end
          rcall('HSET', lastKey, id, newest)
        end
      end
      rcall('ZADD', queueKey, nextDue, id)
      rcall('HSET', rulesKey, id, cronRule('', '', tail))
    end
  end
  result[#result + 1] = held or 0
end
return callRecord(result)
