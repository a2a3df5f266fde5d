--[[
  Reads one page of the schedule with everything each job has (data, due time, run token,
  rule), in the order and from the anchor of page-1.lua (README.md, "Paging").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] runs key: hash, plain job id -> its run token (README.md, "Runs")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] the most jobs in the page (an integer >= 1)
    ARGV[3] anchor id, or '' for the first page
    ARGV[4] anchor's due time, as the previous page gave it

  Output:
    {tokens or false, rules or false, id, due time, n, field1, value1, ...}
    (README.md, "export-3.lua")
]]
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local runsKey = KEYS[3]
local jobPrefix = ARGV[1]

--- @include "pageStart"
--- @include "appendJobs"
--- @include "readRules"

local start = pageStart(queueKey, ARGV[3], ARGV[4])
local found = redis.call('ZRANGE', queueKey, start, start + tonumber(ARGV[2]) - 1, 'WITHSCORES')
local reply, wrong = appendJobs({false, false}, found, jobPrefix)
if not reply or #found == 0 then
  return reply or wrong
end
local ids = {}
for i = 1, #found, 2 do
  ids[#ids + 1] = found[i]
end
-- Each job's run token and rule, in page order (false for a job without), or false for none.
local function inOrder(values)
  local any = false
  local out = {}
  for i = 1, #ids do
    out[i] = values[i] or false
    any = any or values[i] ~= nil
  end
  return any and out
end
local tokens = {}
if redis.call('EXISTS', runsKey) == 1 then
  for i = 1, #ids, 1000 do
    local part = redis.call('HMGET', runsKey, unpack(ids, i, math.min(i + 999, #ids)))
    for j = 1, #part do
      tokens[i + j - 1] = part[j] or nil
    end
  end
end
reply[1] = inOrder(tokens)
reply[2] = inOrder(readRules(rulesKey, ids) or {})
return reply
