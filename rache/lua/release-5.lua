--[[
  Puts back the jobs a claim handed out to nobody (and their runs), each only if nobody changed
  it since, and ends each lease never advanced while it holds (README.md, "Put-back records").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] runs key: hash, plain job id -> its run token (README.md, "Runs")
    KEYS[4] newest runs key: hash, job id -> its newest run (README.md, "Run history")
    KEYS[5] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] wake-up channel: <prefix>wakeup
    ARGV[3] history prefix: a job's runs before its newest are the list ARGV[3] .. id
    ARGV[4] the due time the claim gave the plain jobs, or '' if it removed them
    ARGV[5] n, the number of plain jobs
    ARGV[6 .. 5 + 4n] plain jobs, quadruples: id, due time before the claim, '1' if it had
                      data, its run token or '' (README.md, "Runs")
    ARGV[6 + 4n ..] recurring jobs, triples: id, the occurrence handed out, the due time it moved
                    to; or for a cron job still leased (its advance never made): id, the
                    pending occurrence, the lease (as claim-7.lua gave it)
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the number of jobs put back
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local runsKey = KEYS[3]
local lastKey = KEYS[4]
local jobPrefix = ARGV[1]
local channel = ARGV[2]
local historyPrefix = ARGV[3]
local claimedDue = ARGV[4]
local last = 5 + 4 * tonumber(ARGV[5])

--- @include "rules"
--- @include "wakeup"
--- @include "checkTypes"
--- @include "calls"
--- @include "runs"
--- @include "history"

local replay = callReplay()
if replay then
  return replay
end

local histories = {}  -- each job's runs: a put-back takes its run back
local function historyOf(i)
  histories[#histories + 1], histories[#histories + 2] = historyPrefix .. ARGV[i], 'list'
end
for i = 6, last, 4 do
  historyOf(i)
end
for i = last + 1, #ARGV, 3 do
  historyOf(i)
end
local wrong = checkTypes(
  {queueKey, 'zset', rulesKey, 'hash', runsKey, 'hash', lastKey, 'hash'})
  or checkTypes(histories)
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

for i = 6, last, 4 do
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
    dropRun(lastKey, historyPrefix .. id, id, due, token)  -- not handed out: no run
  end
end
for i = last + 1, #ARGV, 3 do
  local id, due, moved = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current = rcall('ZSCORE', queueKey, id)
  local rule = rcall('HMGET', rulesKey, id)[1]
  if current and rule and tonumber(current) == tonumber(moved) then
    if isEvery(rule) or isIdleCron(rule) then
      putBack(id, due)
      dropRun(lastKey, historyPrefix .. id, id, due, '')
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
