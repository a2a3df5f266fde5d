--[[
  Call records (README.md, "Call records"): a call that ran, sent again with the same call id
  (redis-py retries a command whose reply was lost, with the same arguments), answers what it
  answered and changes nothing. callSeen: the record of this call, or nil, or an error reply;
  callReplay: the recorded reply, or nil, or an error reply; callRecord(reply, record): keeps
  the record (default: the reply, packed) for callTtlMs and returns the reply. The call id is
  the script's last argument and the record's life (ms, Scheduler(call_record_ttl=...)) the one
  before, both taken off ARGV here, so the script reads its ARGV as documented;
  the record's key, <prefix>call:<call id>, is the script's last key. A user whose ACL refuses
  GET or SET (a line from before call records) runs unrecorded.
]]
--- @include "checkTypes"

local callId = table.remove(ARGV)
local callTtlMs = tonumber(table.remove(ARGV))
local callKey = KEYS[#KEYS]
if not callTtlMs or callTtlMs < 1 or callTtlMs ~= math.floor(callTtlMs) then
  return redis.error_reply('ERR rache: the call record life (the argument before the call id) '
    .. 'is not a whole number of ms')
end

-- Read before the script's first write: a key of another type there fails here.
local function callSeen()
  local seen = redis.pcall('GET', callKey)
  if type(seen) == 'table' and seen.err then
    if string.find(seen.err, 'run th', 1, true) then  -- the command refused: 7.0 and 6.2
      callKey = nil
      return nil
    end
    return checkTypes({callKey, 'string'}) or seen
  end
  return seen or nil
end

local function callReplay()
  local seen = callSeen()
  if type(seen) == 'string' then
    return cmsgpack.unpack(seen)
  end
  return seen
end

local function callRecord(reply, record)
  if callKey then  -- pcall: SET refused (NOPERM) is the one way it can fail here
    redis.pcall('SET', callKey, record or cmsgpack.pack(reply), 'PX', callTtlMs)
  end
  return reply
end
