--[[
  Clock jumps (README.md, "Clock jumps"). readMark(clockKey): the latest server time (ms) at
  which a claim moved recurring jobs, or false; false and an error if the key is not a string.
  clockWentBack(mark, nowMs): that time is more than CLOCK_SLACK_MS ahead of now. markMoved:
  raises the mark to now. reaim(...): re-aims each recurring job standing further ahead than
  its rule allows, then lowers the mark to now; the count re-aimed, or false if Redis refused
  the first write (memory pressure: nothing written, the mark left for a later claim).
]]
--- @include "checkTypes"
--- @include "rules"
--- @include "time"

local CLOCK_SLACK_MS = 1000  -- rache.constants.CLOCK_SLACK_MS

local function readMark(clockKey)
  local mark = redis.pcall('GET', clockKey)
  if type(mark) == 'table' and mark.err then
    if string.find(mark.err, 'run th', 1, true) then  -- GET refused (an ACL of before): no mark
      return false
    end
    return false, checkTypes({clockKey, 'string'}) or mark
  end
  return tonumber(mark) or false
end

local function clockWentBack(mark, nowMs)
  return mark and mark > nowMs + CLOCK_SLACK_MS
end

local function markMoved(clockKey, mark, nowMs)
  if not mark or nowMs > mark then  -- pcall: SET refused (an ACL of before) marks nothing
    redis.pcall('SET', clockKey, string.format('%d', nowMs))
  end
end

-- Where a job standing too far ahead goes: an every-N job to its next occurrence after the
-- cutoff (or its start); a cron job (Lua cannot evaluate it) to the cutoff, so that a claim
-- leases it from there and its poller moves it to its next occurrence; a leased one likewise,
-- idle. Not to an earlier occurrence: one before the jump may have been handed out already.
local function reaimed(rule, dueMs, nowMs, cutoffMs, leaseMs)
  if isEvery(rule) then
    local start, every = parseEvery(rule)
    if dueMs <= start or dueMs <= nowMs + every then
      return nil
    end
    if cutoffMs < start then
      return start
    end
    return start + (math.floor((cutoffMs - start) / every) + 1) * every
  end
  local pending, lease, tail = parseCron(rule)
  if pending == '' then
    if dueMs <= nowMs then
      return nil
    end
    return cutoffMs
  end
  if dueMs <= nowMs + leaseMs + CLOCK_SLACK_MS then
    return nil
  end
  return cutoffMs, cronRule('', '', tail)
end

local function reaim(queueKey, rulesKey, clockKey, nowMs, cutoffMs, leaseMs)
  local all = redis.call('HGETALL', rulesKey)
  local count = 0
  for i = 1, #all, 2 do
    local id, rule = all[i], all[i + 1]
    local score = redis.call('ZSCORE', queueKey, id)
    if score and ruleParses(rule) then
      local target, idle = reaimed(rule, timeMs(score), nowMs, cutoffMs, leaseMs)
      if target then
        local moved = redis.pcall('ZADD', queueKey, timeString(target / 1000), id)
        if type(moved) == 'table' and moved.err then
          if count == 0 then  -- refused as the first write: nothing written
            return false
          end
          error(moved.err)  -- cannot happen: Redis lets a script that wrote go on
        end
        if idle then
          redis.call('HSET', rulesKey, id, idle)
        end
        count = count + 1
      end
    end
  end
  local set = redis.pcall('SET', clockKey, string.format('%d', nowMs))
  if count == 0 and type(set) == 'table' and set.err then
    return false
  end
  return count
end
