--[[
  Call records (README.md, "Call records"): a call that ran, sent again with the same call id
  (redis-py retries a command whose reply was lost, with the same arguments), answers what it
  answered and changes nothing. callSeen: the record of this call, or nil, or an error reply;
  callReplay: the recorded reply, or nil, or an error reply; callRecord(reply, record): keeps
  the record (default: the reply, packed) for CALL_TTL_MS and returns the reply. The call id is
  the script's last argument, taken off ARGV here, so the script reads its ARGV as documented.
]]
--- @include "checkTypes"

local callId = table.remove(ARGV)
local callBase = string.sub(KEYS[1], 1, -6)  -- KEYS[1] is always <prefix>queue
local callsKey, repliesKey = callBase .. 'calls', callBase .. 'replies'
local CALL_TTL_MS = 60000  -- rache.constants.CALL_RECORD_TTL
local CALL_PRUNE = 16  -- expired records removed a call, at most
local callNowMs, callExpired

-- Both keys are read before the script's first write: a key of another type fails here.
local function callSeen()
  local seen = redis.pcall('HMGET', repliesKey, callId)
  if seen.err then
    return checkTypes({repliesKey, 'hash'}) or seen
  end
  if seen[1] then
    return seen[1]
  end
  local now = redis.call('TIME')
  callNowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  callExpired = redis.pcall(
    'ZRANGEBYSCORE', callsKey, '-inf', callNowMs, 'LIMIT', 0, CALL_PRUNE)
  if callExpired.err then
    return checkTypes({callsKey, 'zset'}) or callExpired
  end
  return nil
end

local function callReplay()
  local seen = callSeen()
  if type(seen) == 'string' then
    return cmsgpack.unpack(seen)
  end
  return seen
end

local function callRecord(reply, record)
  redis.call('HSET', repliesKey, callId, record or cmsgpack.pack(reply))
  redis.call('ZADD', callsKey, callNowMs + CALL_TTL_MS, callId)
  if #callExpired > 0 then
    redis.call('HDEL', repliesKey, unpack(callExpired))
    redis.call('ZREM', callsKey, unpack(callExpired))
  end
  return reply
end
