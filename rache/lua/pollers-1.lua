--[[
  Reads the live pollers: the entries whose expiry is still to come; writes nothing
  (README.md, "Pollers").

  Input:
    KEYS[1] pollers key: hash, poller name -> '<expiry ms>|<record>'; field '' the next prune

  Output:
    {now (ms since the epoch, server clock), name, expiry ms, record, name, ...}
]]
local rcall = redis.call
local time = rcall('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local reply = {now}
if rcall('TYPE', KEYS[1]).ok ~= 'hash' then
  return reply
end
local entries = rcall('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local expiry, record = string.match(entries[i + 1], '^(%d+)|(.*)$')
  if entries[i] ~= '' and expiry and tonumber(expiry) > now then
    reply[#reply + 1] = entries[i]
    reply[#reply + 1] = expiry
    reply[#reply + 1] = record
  end
end
return reply
