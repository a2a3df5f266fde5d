--[[
  Reads one page of the schedule, earliest first, strictly after a given job in the
  schedule's order (due time, then id bytewise): scheduled_jobs() pages through the whole
  set with it, so that no single reply holds a million jobs, and never goes backwards.

  The page starts right after the anchor job when it is still where it was. If the anchor
  has moved or left, it starts where the anchor would stand: after the jobs due before the
  anchor's due time, and after those due at that very time whose id sorts at or before the
  anchor's (found by a binary search over that run of equal due times, comparing bytes as
  Redis does: Lua's own < follows the server's locale).

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)

    ARGV[1] the most jobs in the page (an integer >= 1)
    ARGV[2] anchor id, or '' for the first page
    ARGV[3] anchor's due time (Unix seconds), as the previous page gave it

  Output:
    {id1, due1, id2, due2, ...}
]]
local rcall = redis.call
local queueKey = KEYS[1]
local count = tonumber(ARGV[1])
local anchor, anchorDue = ARGV[2], ARGV[3]

-- a <= b, comparing bytes and then lengths, as Redis orders members of equal score
local function atOrBefore(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a <= #b
end

local start = 0
if anchor ~= '' then
  local due = rcall('ZSCORE', queueKey, anchor)
  if due and tonumber(due) == tonumber(anchorDue) then
    start = rcall('ZRANK', queueKey, anchor) + 1
  else
    local low = rcall('ZCOUNT', queueKey, '-inf', '(' .. anchorDue)
    local high = rcall('ZCOUNT', queueKey, '-inf', anchorDue)
    while low < high do  -- the first rank in [low, high) whose id sorts after the anchor
      local middle = math.floor((low + high) / 2)
      if atOrBefore(rcall('ZRANGE', queueKey, middle, middle)[1], anchor) then
        low = middle + 1
      else
        high = middle
      end
    end
    start = low
  end
end

return rcall('ZRANGE', queueKey, start, start + count - 1, 'WITHSCORES')
