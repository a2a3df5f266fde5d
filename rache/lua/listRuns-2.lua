--[[
  Reads a list of runs (README.md, "Run history"): a job's runs, or a group's recent failures;
  with the server's clock, by which a running run past its deadline reads unknown.

  Input:
    KEYS[1] the list: <prefix>history:<id> (a job's runs before its newest) or <prefix>failures
    KEYS[2] newest runs key: hash, job id -> its newest run (read for a job's runs)
    ARGV[1] the most records to read (an integer >= 1), newest first
    ARGV[2] the job id, or '' to read the failures

  Output:
    {now (ms since the epoch, text), record, ...}
]]
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local most = tonumber(ARGV[1])
local newest = ARGV[2] ~= '' and redis.call('HMGET', KEYS[2], ARGV[2])[1]
if newest then
  most = most - 1
end
local reply = most > 0 and redis.call('LRANGE', KEYS[1], 0, most - 1) or {}
if newest then
  table.insert(reply, 1, newest)
end
table.insert(reply, 1, string.format('%d', nowMs))
return reply
