-- rache's schedule-2.lua as it was before call records and runs (commit 1a9b11a),
-- its includes expanded: the bare script that make bench's 'raw EVALSHA' runs.
--[[
  Schedules one job: sets its due time on the server clock and merges its data, atomically.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] job key: hash, the job's data

    ARGV[1] wake-up channel: <prefix>wakeup
    ARGV[2] job id
    ARGV[3] offset from now, milliseconds (an integer; negative means already due)
    ARGV[4] precision: 's' or 'ms' (README.md, "Precision flags")
    ARGV[5] n, the number of fields to set
    ARGV[6 .. 5 + 2n] field, value pairs to set
    ARGV[6 + 2n ..] fields to delete

  Output:
    the due time, Unix seconds, as text
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobKey = KEYS[2]

--[[
  Time as the scripts compute and write it (README.md, "Time"): due times in Unix seconds,
  written as '%.17g' text; rule times in integer milliseconds.
]]
local function dueTime(time, offsetMs, precision)  -- time: TIME's reply; precision 's'|'ms'|'at'
  if precision == 'at' then
    return offsetMs / 1000
  end
  local seconds = tonumber(time[1])
  if precision == 's' then
    return seconds + offsetMs / 1000
  end
  return (seconds * 1000 + math.floor(tonumber(time[2]) / 1000) + offsetMs) / 1000
end

local function timeString(t)  -- 17 significant digits: read back as the same double
  return string.format('%.17g', t)
end

local function nowSeconds(time)  -- TIME's reply in Unix seconds, to the microsecond
  return tonumber(time[1]) + tonumber(time[2]) / 1000000
end

local function cutoffMs(cutoff)  -- a cutoff's millisecond, floored (as recurrence.now_ms)
  return math.floor(tonumber(cutoff) * 1000 + 0.0005)
end

local function timeMs(due)  -- a due time in whole milliseconds, rounded (as recurrence.time_ms)
  return math.floor(tonumber(due) * 1000 + 0.5)
end

-- Added to a computed time so that no schedule_job gives it (README.md, "Half a microsecond").
local halfMicrosecond = 0.0000005

--[[
  chunked(command, key, items, first, last): runs `command key item...` over items[first ..
  last] (default: all) in slices of 1,000, small enough for unpack() and even, so pairs stay whole.
]]
local function chunked(command, key, items, first, last)
  first, last = first or 1, last or #items
  for i = first, last, 1000 do
    redis.call(command, key, unpack(items, i, math.min(i + 999, last)))
  end
end

--[[
  head(queueKey): the earliest due time (a number), nil if the queue is empty; wakeup(channel,
  before, due): PUBLISH due on channel (<prefix>wakeup) if it is before that head ("Wake-up").
]]
--[[
  queueHead(queueKey): the earliest due time in the queue, as Redis gives the score (text),
  or false if the queue is empty. O(log n).
]]
local function queueHead(queueKey)
  return redis.call('ZRANGE', queueKey, 0, 0, 'WITHSCORES')[2] or false
end


local function head(queueKey)
  return tonumber(queueHead(queueKey))  -- tonumber(false) is nil
end

local function wakeup(channel, before, due)
  if due ~= nil and (before == nil or due < before) then
    redis.pcall('PUBLISH', channel, string.format('%.17g', due))
  end
end

--[[
  checkTypes(checks): for checks = {key, type, ...}, an error reply naming the first key that
  holds another type (none is fine), else false; run before a write ("No partial writes").
]]
local function checkTypes(checks)
  for first = 1, #checks, 2000 do  -- 1,000 keys at a time
    local last = math.min(first + 1999, #checks)
    local keys = {}
    for i = first, last, 2 do
      keys[#keys + 1] = checks[i]
    end
    -- Many keys, maybe none there (new jobs): one EXISTS may spare the TYPE of each.
    if #keys <= 4 or redis.call('EXISTS', unpack(keys)) > 0 then
      for i = first, last, 2 do
        local key, expected = checks[i], checks[i + 1]
        local found = redis.call('TYPE', key).ok
        if found ~= 'none' and found ~= expected then
          return redis.error_reply(
            'WRONGTYPE ' .. key .. ' holds a ' .. found .. ', not a ' .. expected)
        end
      end
    end
  end
  return false
end


local nset = tonumber(ARGV[5])
local due = timeString(dueTime(rcall('TIME'), tonumber(ARGV[3]), ARGV[4]))

-- No TYPE here (README.md, "No partial writes"): only a key's first command can fail on its
-- type, and each key's runs before any write, pcall'd so that its error names the key.
local first = redis.pcall('ZRANGE', queueKey, 0, 0, 'WITHSCORES')  -- the head, as `head`
if first.err then
  return checkTypes({queueKey, 'zset'}) or first
end
if #ARGV > 5 then  -- the data first: the fields to set, else those to delete
  local command, last = 'HSET', 5 + 2 * nset
  if nset == 0 then
    command, last = 'HDEL', #ARGV
  end
  local written = redis.pcall(command, jobKey, unpack(ARGV, 6, math.min(1005, last)))
  if type(written) == 'table' and written.err then
    return checkTypes({jobKey, 'hash'}) or written
  end
  chunked(command, jobKey, ARGV, 1006, last)
  if nset > 0 then
    chunked('HDEL', jobKey, ARGV, 6 + 2 * nset, #ARGV)
  end
end
rcall('ZADD', queueKey, due, ARGV[2])
wakeup(ARGV[1], tonumber(first[2]), tonumber(due))

return due
