--[[
  checkTypes(checks): for checks = {key, type, ...}, an error reply naming the first key that
  holds another type (none is fine), else false; run before a write ("No partial writes").
]]
local function checkTypes(checks)
  for first = 1, #checks, 2000 do  -- 1,000 keys at a time
    local last = math.min(first + 1999, #checks)
    local keys = {}
    for i = first, last, 2 do
      keys[#keys + 1] = checks[i]
    end
    -- Many keys, maybe none there (new jobs): one EXISTS may spare the TYPE of each.
    if #keys <= 4 or redis.call('EXISTS', unpack(keys)) > 0 then
      for i = first, last, 2 do
        local key, expected = checks[i], checks[i + 1]
        local found = redis.call('TYPE', key).ok
        if found ~= 'none' and found ~= expected then
          return redis.error_reply(
            'WRONGTYPE ' .. key .. ' holds a ' .. found .. ', not a ' .. expected)
        end
      end
    end
  end
  return false
end
