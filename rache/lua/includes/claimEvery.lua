--[[
  claimEvery(queueKey, id, rule, due, nowMs, kept, recurring, runs): moves an every-N job to its
  next occurrence; appends the occurrence handed out, if any, to kept (README.md, "Every-N"),
  unless its overlap policy holds it back (README.md, "Overlap"; runs: see includes/overlap.lua).
]]
--- @include "rules"
--- @include "time"
--- @include "overlap"

local function claimEvery(queueKey, id, rule, due, nowMs, kept, recurring, runs)
  local start, every, misfire, grace, overlap = parseEvery(rule)
  local pending = timeMs(overlap == 'b' and overlapPending(runs, id, due) or due)
  local nextMs = start
  if nowMs >= start then
    local latest = start + math.floor((nowMs - start) / every) * every
    if latest < pending then  -- none in [pending, now]: resume at the first after
      local from = math.max(pending, nowMs + 1)
      nextMs = start + math.ceil((from - start) / every) * every
    else
      nextMs = latest + every
      if misfire == 'c' or nowMs - latest <= grace then
        local occurrence = timeString(latest / 1000)
        local heldUntil = overlap == 'b' and overlapBuffer(runs, id)
        if heldUntil then  -- held until the running run ends, then handed out
          nextMs = heldUntil
        elseif not (overlap == 'k' and overlapSkip(runs, id, occurrence)) then
          local n = #kept
          kept[n + 1], kept[n + 2] = id, occurrence
        end
      end
    end
  end
  local moved = timeString(nextMs / 1000)
  redis.call('ZADD', queueKey, moved, id)
  local n = #recurring
  recurring[n + 1], recurring[n + 2], recurring[n + 3], recurring[n + 4] = id, 'e', moved, ''
end
