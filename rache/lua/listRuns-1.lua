--[[
  Reads a list of runs (README.md, "Run history"): a job's history, or a group's recent
  failures; with the server's clock, by which a running run past its deadline reads unknown.

  Input:
    KEYS[1] the list: <prefix>history:<id> or <prefix>failures
    ARGV[1] the most records to read (an integer >= 1), newest first

  Output:
    {now (ms since the epoch, text), record, ...}
]]
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local reply = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
table.insert(reply, 1, string.format('%d', nowMs))
return reply
