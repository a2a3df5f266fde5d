--[[
  checkTypes(checks): for checks = {key, type, ...}, an error reply naming the first key that
  holds another type (none is fine), else false; run before a write ("No partial writes").
]]
local function checkTypes(checks)
  for i = 1, #checks, 2 do
    local key, expected = checks[i], checks[i + 1]
    local found = redis.call('TYPE', key).ok
    if found ~= 'none' and found ~= expected then
      return redis.error_reply(
        'WRONGTYPE ' .. key .. ' holds a ' .. found .. ', not a ' .. expected)
    end
  end
  return false
end
