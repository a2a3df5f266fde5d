--[[
  appendJobs(reply, found, jobPrefix): appends to reply, for each (id, due time) pair of found,
  the id, the due time, n and the n field/value pairs of its hash (README.md, "Jobs in a reply").
]]
local function appendJobs(reply, found, jobPrefix)
  local n = #reply
  for i = 1, #found, 2 do
    local data = redis.call('HGETALL', jobPrefix .. found[i])
    reply[n + 1], reply[n + 2], reply[n + 3] = found[i], found[i + 1], #data / 2
    n = n + 3
    for j = 1, #data do
      reply[n + j] = data[j]
    end
    n = n + #data
  end
  return reply
end
