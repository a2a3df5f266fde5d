--[[
  claimRecurring(queueKey, rulesKey, found, ids, rules, cutoff, now, leaseMs): claims the
  recurring jobs of a batch; returns its plain ids, the jobs to read and the reply's 4th item.
]]
--- @include "time"
--- @include "claimEvery"
--- @include "leaseCron"

local function claimRecurring(queueKey, rulesKey, found, ids, rules, cutoff, now, leaseMs)
  local plain, kept, recurring = {}, {}, {#ids}
  local nowMs = cutoffMs(cutoff)
  local lease = false
  for i = 1, #ids do
    local id, rule, due = ids[i], rules[i], found[2 * i]
    if not rule then
      plain[#plain + 1] = id
      local n = #kept
      kept[n + 1], kept[n + 2] = id, due
    elseif isEvery(rule) then
      claimEvery(queueKey, id, rule, due, nowMs, kept, recurring)
    else
      lease = lease or leaseUntil(now, leaseMs)
      leaseCron(queueKey, rulesKey, id, rule, due, lease, kept, recurring)
    end
  end
  return plain, kept, recurring
end
