--[[
  Reads the ids of a schedule's recurring jobs (the fields of its rules hash); writes nothing.

  Input:
    KEYS[1] recurring key: hash, job id -> rule

  Output:
    {job id, ...}, in the hash's order
]]
local rules = redis.call('HGETALL', KEYS[1])  -- HGETALL: no more ACL rights (README.md)
local ids = {}
for i = 1, #rules, 2 do
  ids[#ids + 1] = rules[i]
end
return ids
