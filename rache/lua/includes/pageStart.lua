--[[
  pageStart(queueKey, anchor, anchorDue): the rank right after the anchor job in the schedule's
  order, or where it would stand if it moved; 0 for an anchor of '' (README.md, "Paging").
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
