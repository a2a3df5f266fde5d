--[[
  head(queueKey): the earliest due time (a number), nil if the queue is empty; wakeup(queueKey,
  before, due): PUBLISH due on <prefix>wakeup if it is before that head (README.md, "Wake-up").
]]
--- @include "queueHead"

local function head(queueKey)
  return tonumber(queueHead(queueKey))  -- tonumber(false) is nil
end

local function wakeup(queueKey, before, due)
  if due ~= nil and (before == nil or due < before) then
    redis.pcall('PUBLISH', string.sub(queueKey, 1, -6) .. 'wakeup', string.format('%.17g', due))
  end
end
