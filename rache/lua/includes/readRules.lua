--[[
  readRules(rulesKey, ids): the rule of each id (rules[i] for ids[i], nil for a plain job), or
  false when none recurs; one HMGET per 1,000 ids, and none while the hash does not exist.
]]
local function readRules(rulesKey, ids)
  local rules = false
  if redis.call('EXISTS', rulesKey) == 1 then
    local any = {}
    for i = 1, #ids, 1000 do
      local part = redis.call('HMGET', rulesKey, unpack(ids, i, math.min(i + 999, #ids)))
      for j = 1, #part do
        if part[j] then
          any[i + j - 1] = part[j]
          rules = any
        end
      end
    end
  end
  return rules
end
