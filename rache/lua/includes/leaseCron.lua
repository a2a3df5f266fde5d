--[[
  leaseUntil(now, leaseMs): the lease time of a batch's cron jobs; leaseCron(...): leases one,
  appending its pending occurrence to kept (README.md, "Leases and the holder-only advance").
  Its kind in the reply is 'c', or 'c' .. the old lease when it takes up a lease that ran out
  untouched (its holder never advanced it): the occurrences that fell while that lease held
  are the new holder's to hand out. A 'buffer_one' job resumes from just after its newest run
  (overlapPending: the occurrence it held); runs: see includes/overlap.lua.
]]
--- @include "rules"
--- @include "time"
--- @include "overlap"

local function leaseUntil(now, leaseMs)
  return timeString(dueTime(now, leaseMs, 'ms') + halfMicrosecond)
end

local function leaseCron(queueKey, rulesKey, id, rule, due, lease, kept, recurring, runs)
  local pending, held, tail = parseCron(rule)
  local kind = 'c'
  if pending == '' or tonumber(held) ~= tonumber(due) then
    pending = due  -- not leased, or moved since its lease: it resumes at its due time
    if cronOptions(tail) == 'b' then
      pending = overlapPending(runs, id, due)
    end
  else
    kind = 'c' .. held  -- a lease that ran out: the same pending occurrence, and since when
  end
  local leased = cronRule(pending, lease, tail)
  redis.call('HSET', rulesKey, id, leased)
  redis.call('ZADD', queueKey, lease, id)
  local n = #kept
  kept[n + 1], kept[n + 2] = id, pending
  n = #recurring
  recurring[n + 1], recurring[n + 2], recurring[n + 3], recurring[n + 4] = id, kind, lease, leased
end
