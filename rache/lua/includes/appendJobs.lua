--[[
  appendJobs(reply, found, jobPrefix, data): appends each job ("Jobs in a reply"), its data from
  data (by id) or read here; readJobs: each id's data by id. Both: false, error if not a hash.
]]
--- @include "checkTypes"

local function readJob(key)  -- HGETALL, pcall'd: false and the error if key is not a hash
  local fields = redis.pcall('HGETALL', key)
  if fields.err then
    return false, checkTypes({key, 'hash'}) or fields
  end
  return fields
end

local function readJobs(jobPrefix, ids)
  local data = {}
  for i = 1, #ids do
    local fields, wrong = readJob(jobPrefix .. ids[i])
    if not fields then
      return false, wrong
    end
    data[ids[i]] = fields
  end
  return data
end

local function appendJobs(reply, found, jobPrefix, data)
  local n = #reply
  for i = 1, #found, 2 do
    local fields = data and data[found[i]]
    if not fields then
      local wrong
      fields, wrong = readJob(jobPrefix .. found[i])
      if not fields then
        return false, wrong
      end
    end
    reply[n + 1], reply[n + 2], reply[n + 3] = found[i], found[i + 1], #fields / 2
    n = n + 3
    for j = 1, #fields do
      reply[n + j] = fields[j]
    end
    n = n + #fields
  end
  return reply
end
