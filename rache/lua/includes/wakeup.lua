--[[
  Wake-up of sleeping dispatchers, for the scripts that add jobs to the schedule.

  head(queueKey): the earliest due time in the queue (a number), nil if it is empty.
  O(log n): read before the script adds its jobs.

  wakeup(queueKey, before, due): when `due` (the earliest due time the script just gave a job)
  is before `before` (the head before the script ran, nil for an empty queue), the head of
  the queue moved earlier, and dispatchers sleeping until the old head must wake: PUBLISH
  the new due time on <prefix>wakeup (the queue key less its "queue" suffix, plus "wakeup";
  a channel, not a key). Nothing is published otherwise, so a schedule that does not move
  the head costs one ZRANGE more. redis.pcall: a user not allowed to PUBLISH (an ACL line
  from before the Dispatcher) still schedules; dispatchers then wake on their timer only.
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
