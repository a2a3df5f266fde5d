--[[
  claimEvery(queueKey, id, rule, due, nowMs, kept, recurring): moves an every-N job to its
  next occurrence; appends the occurrence handed out, if any, to kept (README.md, "Every-N").
]]
--- @include "rules"
--- @include "time"

local function claimEvery(queueKey, id, rule, due, nowMs, kept, recurring)
  local start, every, misfire, grace = parseEvery(rule)
  local pending = timeMs(due)
  local nextMs = start
  if nowMs >= start then
    local latest = start + math.floor((nowMs - start) / every) * every
    if latest < pending then  -- none in [pending, now]: resume at the first after
      local from = math.max(pending, nowMs + 1)
      nextMs = start + math.ceil((from - start) / every) * every
    else
      nextMs = latest + every
      if misfire == 'c' or nowMs - latest <= grace then
        local n = #kept
        kept[n + 1], kept[n + 2] = id, timeString(latest / 1000)
      end
    end
  end
  local moved = timeString(nextMs / 1000)
  redis.call('ZADD', queueKey, moved, id)
  local n = #recurring
  recurring[n + 1], recurring[n + 2], recurring[n + 3], recurring[n + 4] = id, 'e', moved, ''
end
