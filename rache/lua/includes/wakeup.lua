--[[
  Wake-up of sleeping dispatchers, for the scripts that add jobs to the schedule.

  head(queueKey): the earliest due time in the queue (a number), nil if it is empty.
  O(log n): read before the script adds its jobs.

  wakeup(channel, before, due): when `due` (the earliest due time the script just gave a job)
  is before `before` (the head before the script ran, nil for an empty queue), PUBLISH `due`
  on `channel` (<prefix>wakeup), for sleeping dispatchers. See README.md, "Wake-up".
]]
local function head(queueKey)
  local first = redis.call('ZRANGE', queueKey, 0, 0, 'WITHSCORES')
  return first[2] and tonumber(first[2])
end

local function wakeup(channel, before, due)
  if due ~= nil and (before == nil or due < before) then
    redis.pcall('PUBLISH', channel, string.format('%.17g', due))
  end
end
