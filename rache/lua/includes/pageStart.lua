--[[
  pageStart(queueKey, anchor, anchorDue): the rank at which a page after the anchor job
  starts, in the schedule's order (due time, then id bytewise), so that paging never goes
  backwards. Right after the anchor if it is still where it was; else where it would stand:
  after the jobs due before its due time, and after those due at that time whose id sorts
  at or before it (a binary search over that run of equal due times, comparing bytes as
  Redis does: Lua's own < follows the server's locale). An anchor of '' starts at 0.
]]
local function atOrBefore(a, b)  -- a <= b, bytes then lengths, as Redis orders equal scores
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a <= #b
end

local function pageStart(queueKey, anchor, anchorDue)
  if anchor == '' then
    return 0
  end
  local due = redis.call('ZSCORE', queueKey, anchor)
  if due and tonumber(due) == tonumber(anchorDue) then
    return redis.call('ZRANK', queueKey, anchor) + 1
  end
  local low = redis.call('ZCOUNT', queueKey, '-inf', '(' .. anchorDue)
  local high = redis.call('ZCOUNT', queueKey, '-inf', anchorDue)
  while low < high do  -- the first rank in [low, high) whose id sorts after the anchor
    local middle = math.floor((low + high) / 2)
    if atOrBefore(redis.call('ZRANGE', queueKey, middle, middle)[1], anchor) then
      low = middle + 1
    else
      high = middle
    end
  end
  return low
end
