--[[
  removeOrReschedule(queueKey, plain, offset, precision, now, cutoff): removes the plain ids
  (offset '') or moves them all to one due time, never at or before the cutoff; that time or false.
]]
--- @include "time"
--- @include "chunked"

local function removeOrReschedule(queueKey, plain, offset, precision, now, cutoff)
  if #plain == 0 then
    return false
  end
  if offset == '' then
    chunked('ZREM', queueKey, plain)
    return false
  end
  local due = dueTime(now, tonumber(offset), precision)
  local limit = tonumber(cutoff)
  if due <= limit then
    due = limit + halfMicrosecond
  end
  local newDue = timeString(due)
  local members = {}
  for i = 1, #plain do
    members[2 * i - 1] = newDue
    members[2 * i] = plain[i]
  end
  chunked('ZADD', queueKey, members)
  return newDue
end
