--[[
  readJobs(jobPrefix, ids): each id's hash by id, or false and an error naming a key not a hash;
  appendJobs(reply, found, jobPrefix, data): appends each job as README.md, "Jobs in a reply".
]]
--- @include "checkTypes"

local function readJobs(jobPrefix, ids)  -- pcall'd HGETALL: a claim reads before its writes
  local data = {}
  for i = 1, #ids do
    local fields = redis.pcall('HGETALL', jobPrefix .. ids[i])
    if fields.err then
      return false, checkTypes({jobPrefix .. ids[i], 'hash'}) or fields
    end
    data[ids[i]] = fields
  end
  return data
end

local function appendJobs(reply, found, jobPrefix, data)  -- data: from readJobs, or nil
  local n = #reply
  for i = 1, #found, 2 do
    local fields = data and data[found[i]] or redis.call('HGETALL', jobPrefix .. found[i])
    reply[n + 1], reply[n + 2], reply[n + 3] = found[i], found[i + 1], #fields / 2
    n = n + 3
    for j = 1, #fields do
      reply[n + j] = fields[j]
    end
    n = n + #fields
  end
  return reply
end
