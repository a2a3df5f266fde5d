--[[
  Announces a poller as live for a time to live from now, or withdraws it, and drops the
  entries of pollers whose time ran out, at most once a time to live (README.md, "Pollers").

  Input:
    KEYS[1] pollers key: hash, poller name -> '<expiry ms>|<record>'; field '' the next prune

    ARGV[1] the poller's name (not empty)
    ARGV[2] its time to live, ms (an integer >= 1), or '0': withdraw it
    ARGV[3] its record (JSON that Python reads; '' to withdraw)

  Output:
    the entry's expiry (ms since the epoch, server clock); withdrawn: 1 if it was listed, else 0
]]
local rcall = redis.call
local pollersKey = KEYS[1]
local name, ttl, record = ARGV[1], tonumber(ARGV[2]), ARGV[3]

--- @include "checkTypes"

if name == '' or not ttl or ttl < 0 or ttl ~= math.floor(ttl) then
  return redis.error_reply('ERR rache: announce takes a name and a whole ttl in ms')
end
local wrong = checkTypes({pollersKey, 'hash'})
if wrong then
  return wrong
end

local time = rcall('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- Prune: an entry lives until its expiry; the next prune is due a time to live after this
-- one, so an idle schedule's announces cost an HMGET, not a scan. A withdrawal scans (once
-- a poller's life), and deletes the key when no entry is left.
local withdraw = ttl == 0
local listed = 0
local nextPrune = tonumber(rcall('HMGET', pollersKey, '')[1])
if withdraw or not nextPrune or nextPrune <= now then
  local entries = rcall('HGETALL', pollersKey)
  local gone, live = {}, 0
  for i = 1, #entries, 2 do
    local field = entries[i]
    if field ~= '' then
      local expiry = tonumber(string.match(entries[i + 1], '^(%d+)|'))
      if field == name then
        listed = 1
      end
      if not expiry or expiry <= now or (withdraw and field == name) then
        gone[#gone + 1] = field
      else
        live = live + 1
      end
    end
  end
  if withdraw and live == 0 then
    rcall('DEL', pollersKey)
    return listed
  end
  if #gone > 0 then
    rcall('HDEL', pollersKey, unpack(gone))
  end
  if not withdraw then
    rcall('HSET', pollersKey, '', string.format('%d', now + ttl))
  end
end
if withdraw then
  return listed
end
rcall('HSET', pollersKey, name, string.format('%d|', now + ttl) .. record)
return now + ttl
