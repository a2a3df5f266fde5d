--[[
  Puts back the jobs a claim handed out to nobody, each only if nobody changed it since,
  and ends each lease never advanced while it holds (README.md, "Put-back records").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[4] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] wake-up channel: <prefix>wakeup
    ARGV[3] the due time the claim gave the plain jobs, or '' if it removed them
    ARGV[4] n, the number of plain jobs
    ARGV[5 .. 4 + 4n] plain jobs, quadruples: id, due time before the claim, '1' if it had
                      data, its run token or '' (README.md, "Runs")
    ARGV[5 + 4n ..] recurring jobs, triples: id, the occurrence handed out, the due time it moved
                    to; or for a cron job still leased (its advance never made): id, the
                    pending occurrence, the lease (as claim-4.lua gave it)
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the number of jobs put back
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local runsKey = KEYS[3]
local jobPrefix = ARGV[1]
local channel = ARGV[2]
local claimedDue = ARGV[3]
local last = 4 + 4 * tonumber(ARGV[4])

--- @include "rules"
--- @include "wakeup"
--- @include "checkTypes"
--- @include "calls"
--- @include "runs"

local replay = callReplay()
if replay then
  return replay
end

local wrong = checkTypes({queueKey, 'zset', rulesKey, 'hash', runsKey, 'hash'})
if wrong then
  return wrong
end

local before = head(queueKey)
local earliest = nil

local restored = 0
local function putBack(id, due)
  rcall('ZADD', queueKey, due, id)
  restored = restored + 1
  if earliest == nil or tonumber(due) < earliest then
    earliest = tonumber(due)
  end
end

for i = 5, last, 4 do
  local id, due, hadData, token = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local current = rcall('ZSCORE', queueKey, id)
  local unchanged
  if claimedDue == '' then
    unchanged = not current and (hadData == '0' or rcall('EXISTS', jobPrefix .. id) == 1)
  else
    unchanged = current and tonumber(current) == tonumber(claimedDue)
  end
  if unchanged then
    putBack(id, due)
    if token ~= '' then  -- the same run, back
      rcall('HSET', runsKey, id, token)
    end
  end
end
for i = last + 1, #ARGV, 3 do
  local id, due, moved = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current = rcall('ZSCORE', queueKey, id)
  local rule = rcall('HMGET', rulesKey, id)[1]
  if current and rule and tonumber(current) == tonumber(moved) then
    if isEvery(rule) or isIdleCron(rule) then
      putBack(id, due)
    else
      local _, lease, tail = parseCron(rule)
      if lease == moved then  -- still leased to the claim: the lease ends, the job idle
        rcall('HSET', rulesKey, id, cronRule('', '', tail))
        putBack(id, due)
      end
    end
  end
end
wakeup(channel, before, earliest)
return callRecord(restored)
