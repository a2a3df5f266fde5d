--[[
  chunked(command, key, items, first, last): runs `command key item...` over items[first ..
  last] (default: all) in slices of 1,000, small enough for unpack() and even, so pairs stay whole.
]]
local function chunked(command, key, items, first, last)
  first, last = first or 1, last or #items
  for i = first, last, 1000 do
    redis.call(command, key, unpack(items, i, math.min(i + 999, last)))
  end
end
