--[[
  Reads what the health checks need of some recurring jobs of one group (README.md, "Run
  history"): each job's rule, its queue entry and its newest runs; writes nothing.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule
    KEYS[3] newest runs key: hash, job id -> its newest run

    ARGV[1] history key prefix: <prefix>history: (a job's runs before its newest: ARGV[1] .. id)
    ARGV[2] the most runs to read per job (an integer >= 1), newest first
    ARGV[3..] job ids

  Output:
    {now (ms since the epoch, text), then per id: {rule or false, due time or false,
     record, ...}} (a runs key of another type reads as no runs)
]]
local rcall = redis.call
local now = rcall('TIME')
local reply = {string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))}
local most = tonumber(ARGV[2])
for i = 3, #ARGV do
  local id = ARGV[i]
  local row = {rcall('HMGET', KEYS[2], id)[1], rcall('ZSCORE', KEYS[1], id)}
  local newest = redis.pcall('HMGET', KEYS[3], id)
  newest = not newest.err and newest[1]
  if newest then
    row[3] = newest
    local records = most > 1 and redis.pcall('LRANGE', ARGV[1] .. id, 0, most - 2) or {}
    if not records.err then
      for j = 1, #records do
        row[j + 3] = records[j]
      end
    end
  end
  reply[#reply + 1] = row
end
return reply
