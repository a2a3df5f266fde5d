--[[
  head(queueKey): the earliest due time (a number), nil if the queue is empty; wakeup(channel,
  before, due): PUBLISH due on channel (<prefix>wakeup) if it is before that head ("Wake-up").
]]
--- @include "queueHead"

local function head(queueKey)
  return tonumber(queueHead(queueKey))  -- tonumber(false) is nil
end

local function wakeup(channel, before, due)
  if due ~= nil and (before == nil or due < before) then
    redis.pcall('PUBLISH', channel, string.format('%.17g', due))
  end
end
