--[[
  claimRecurring(c, found, ids, rules): claims the recurring jobs of a batch; returns its plain
  ids, the jobs to read and the reply's 4th item. c: the claim's keys and settings (queue,
  rules, aside, clock, mark, cutoff, now, leaseMs, full, offset, runs: the run settings of
  the overlap policies, includes/overlap.lua, or false); nil and an error reply,
  before any write, if <prefix>aside is to be written and is not a hash.

  Every rule is checked first, before the claim's first write: a job whose rule does not
  parse is set aside (off the queue, into <prefix>aside: README.md, "Set-aside jobs"), kind
  'x'. Under memory pressure (c.full) the claim adds nothing: each recurring job, and each
  plain job it would reschedule, is left as it is, kind 'm' (README.md, "Memory pressure").
  When it moved recurring jobs, the clock mark rises to now (README.md, "Clock jumps").
]]
--- @include "time"
--- @include "rules"
--- @include "claimEvery"
--- @include "leaseCron"
--- @include "clockJump"
--- @include "checkTypes"

local function entry(recurring, id, kind, due, rule)
  local n = #recurring
  recurring[n + 1], recurring[n + 2], recurring[n + 3], recurring[n + 4] = id, kind, due, rule
end

local function claimRecurring(c, found, ids, rules)
  local plain, kept, recurring = {}, {}, {#ids}
  local bad, anyBad = {}, false
  for i = 1, #ids do
    if rules[i] and not ruleParses(rules[i]) then
      bad[i], anyBad = true, true
    end
  end
  if anyBad and not c.full then  -- <prefix>aside will be written: its type first
    local wrong = checkTypes({c.aside, 'hash'})
    if wrong then
      return nil, wrong
    end
  end
  local nowMs = cutoffMs(c.cutoff)
  local lease = false
  local moved = false
  for i = 1, #ids do
    local id, rule, due = ids[i], rules[i], found[2 * i]
    if c.full and (rule or c.offset ~= '') then
      entry(recurring, id, 'm', due, rule or '')
    elseif not rule then
      plain[#plain + 1] = id
      local n = #kept
      kept[n + 1], kept[n + 2] = id, due
    elseif bad[i] then
      redis.call('ZREM', c.queue, id)
      redis.call('HSET', c.aside, id, due)
      entry(recurring, id, 'x', due, rule)
    elseif isEvery(rule) then
      claimEvery(c.queue, id, rule, due, nowMs, kept, recurring, c.runs)
      moved = true
    else
      lease = lease or leaseUntil(c.now, c.leaseMs)
      leaseCron(c.queue, c.rules, id, rule, due, lease, kept, recurring, c.runs)
      moved = true
    end
  end
  if moved then
    markMoved(c.clock, c.mark, timeMs(nowSeconds(c.now)))
  end
  return plain, kept, recurring
end
