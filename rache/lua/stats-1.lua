--[[
  The figures of a schedule in one snapshot: how many jobs, how many due, the earliest due
  time, the next one after now, and how many fall due in each coming interval.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time

    ARGV[1] the number of coming intervals to count (an integer >= 0)
    ARGV[2] an interval's length, seconds

  Output:
    {now, total, due now, earliest due time or false, next due time after now or false,
     call records (ZCARD <prefix>calls: README.md, "Call records"), count in (now, now + length], count in (now + length, now + 2 length], ...}
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
local reply = {
  nowText,
  rcall('ZCARD', queueKey),
  rcall('ZCOUNT', queueKey, '-inf', nowText),
  earliest,
  after[2] or false,
  rcall('ZCARD', string.sub(queueKey, 1, -6) .. 'calls'),
}
for i = 0, intervals - 1 do
  local low, high = timeString(now + i * length), timeString(now + (i + 1) * length)
  reply[#reply + 1] = rcall('ZCOUNT', queueKey, '(' .. low, high)
end
return reply
