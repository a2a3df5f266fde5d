--[[
  Runs (README.md, "Runs"): <prefix>runs, a hash of job id -> the token of the job's run,
  set by each schedule of a plain job (the first 8 bytes of its call id), so that two runs of
  a job never share an occurrence id. runToken: this call's token; readRuns(runsKey, ids):
  {id, token, ...} of the ids that have one; false and an error if runsKey is not a hash.
]]
--- @include "checkTypes"
--- @include "calls"

local runsKey = callBase .. 'runs'

local function runToken()
  return string.sub(callId, 1, 8)
end

local function readRuns(key, ids)
  local runs = {}
  for first = 1, #ids, 1000 do
    local tokens = redis.pcall('HMGET', key, unpack(ids, first, math.min(first + 999, #ids)))
    if tokens.err then
      return false, checkTypes({key, 'hash'}) or tokens
    end
    for i = 1, #tokens do
      if tokens[i] then
        runs[#runs + 1], runs[#runs + 2] = ids[first + i - 1], tokens[i]
      end
    end
  end
  return runs
end
