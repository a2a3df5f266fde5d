--[[
  chunked(command, key, items): runs `command key item...` over a list in slices small
  enough for unpack() (Lua's C stack holds about 8,000 values), returning nothing.
]]
local function chunked(command, key, items)
  local size = 1000
  for i = 1, #items, size do
    redis.call(command, key, unpack(items, i, math.min(i + size - 1, #items)))
  end
end
