--[[
  The figures of a schedule in one snapshot: how many jobs, how many due, the earliest due
  time, the next one after now, the jobs set aside, how many fall due in each coming interval.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] aside key: hash, job id -> the due time it stood at (README.md, "Set-aside jobs")
    KEYS[3] recurring key: hash, job id -> rule

    ARGV[1] the number of coming intervals to count (an integer >= 0)
    ARGV[2] an interval's length, seconds

  Output:
    {now, total, due now, earliest due time or false, next due time after now or false,
     {id, due time it stood at, rule as stored, ...} of the jobs set aside,
     count in (now, now + length], count in (now + length, now + 2 length], ...}
]]
local rcall = redis.call
local queueKey = KEYS[1]
local intervals = tonumber(ARGV[1])
local length = tonumber(ARGV[2])

--- @include "time"
--- @include "queueHead"

local now = nowSeconds(rcall('TIME'))
local nowText = timeString(now)

local earliest = queueHead(queueKey)
local after = rcall('ZRANGEBYSCORE', queueKey, '(' .. nowText, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
-- The jobs set aside: each entry still off the queue with a rule (one scheduled, declared
-- again or deleted since is not set aside any more).
local aside = {}
local entries = rcall('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local id = entries[i]
  if not rcall('ZSCORE', queueKey, id) then
    local rule = rcall('HMGET', KEYS[3], id)[1]
    if rule then
      aside[#aside + 1], aside[#aside + 2], aside[#aside + 3] = id, entries[i + 1], rule
    end
  end
end
local reply = {
  nowText,
  rcall('ZCARD', queueKey),
  rcall('ZCOUNT', queueKey, '-inf', nowText),
  earliest,
  after[2] or false,
  aside,
}
for i = 0, intervals - 1 do
  local low, high = timeString(now + i * length), timeString(now + (i + 1) * length)
  reply[#reply + 1] = rcall('ZCOUNT', queueKey, '(' .. low, high)
end
return reply
