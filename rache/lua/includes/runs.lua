--[[
  Runs (README.md, "Runs"): <prefix>runs, a hash of job id -> the token of the job's run,
  set by each schedule of a plain job (the first 8 bytes of its call id), so that two runs of
  a job never share an occurrence id. runToken: this call's token; readRuns(key, ids): the
  tokens by id of the ids that have one, and how many; false and an error if key (the runs
  key, which every script that uses it takes in KEYS) is not a hash.
]]
--- @include "checkTypes"
--- @include "calls"

local function runToken()
  return string.sub(callId, 1, 8)
end

local function readRuns(key, ids)
  local runs, count = {}, 0
  for first = 1, #ids, 1000 do
    local tokens = redis.pcall('HMGET', key, unpack(ids, first, math.min(first + 999, #ids)))
    if tokens.err then
      return false, checkTypes({key, 'hash'}) or tokens
    end
    for i = 1, #tokens do
      if tokens[i] then
        runs[ids[first + i - 1]], count = tokens[i], count + 1
      end
    end
  end
  return runs, count
end
