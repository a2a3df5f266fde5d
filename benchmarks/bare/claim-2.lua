-- rache's claim-2.lua as it was before call records and runs (commit 1a9b11a),
-- its includes expanded: the bare script that make bench's 'raw EVALSHA' runs.
--[[
  Claims a batch of due jobs in one atomic step: removes or reschedules the plain ones, moves
  every-N jobs to their next occurrence, leases cron jobs, and reads the jobs' data.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] recurring key: hash, job id -> rule

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] the most jobs to claim (an integer >= 1)
    ARGV[3] cutoff: claim jobs due at or before it, as the call's first batch gave it; '' reads
            the server clock
    ARGV[4] reschedule offset from now, milliseconds; '' removes the plain jobs instead
    ARGV[5] precision of the reschedule: 's' or 'ms'
    ARGV[6] lease of a cron job, milliseconds (an integer >= 1)

  Output:
    {cutoff, new due time or false, head after the claim or false, recurring or false,
     id, due time, n, field1, value1, ... fieldn, valuen, ...}   (README.md, "claim-2.lua")
]]
local rcall = redis.call
local queueKey = KEYS[1]
local rulesKey = KEYS[2]
local jobPrefix = ARGV[1]
local count = tonumber(ARGV[2])
local cutoff = ARGV[3]
local offset = ARGV[4]

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
  queueHead(queueKey): the earliest due time in the queue, as Redis gives the score (text),
  or false if the queue is empty. O(log n).
]]
local function queueHead(queueKey)
  return redis.call('ZRANGE', queueKey, 0, 0, 'WITHSCORES')[2] or false
end

--[[
  readRules(rulesKey, ids): the rule of each id (rules[i] for ids[i], nil for a plain job), or
  false when none recurs; one HMGET per 1,000 ids, and none while the hash does not exist.
]]
local function readRules(rulesKey, ids)
  local rules = false
  if redis.call('EXISTS', rulesKey) == 1 then
    local any = {}
    for i = 1, #ids, 1000 do
      local part = redis.call('HMGET', rulesKey, unpack(ids, i, math.min(i + 999, #ids)))
      for j = 1, #part do
        if part[j] then
          any[i + j - 1] = part[j]
          rules = any
        end
      end
    end
  end
  return rules
end

--[[
  claimRecurring(queueKey, rulesKey, found, ids, rules, cutoff, now, leaseMs): claims the
  recurring jobs of a batch; returns its plain ids, the jobs to read and the reply's 4th item.
]]

--[[
  claimEvery(queueKey, id, rule, due, nowMs, kept, recurring): moves an every-N job to its
  next occurrence; appends the occurrence handed out, if any, to kept (README.md, "Every-N").
]]
--[[
  The rule strings of <prefix>recurring, parsed and built here only (README.md, "Rule
  strings"): every-N 'e|start|tail', cron 'c|pending|lease|tail'.
]]
local function isEvery(rule)  -- an every-N rule
  return string.sub(rule, 1, 1) == 'e'
end

local function isIdleCron(rule)  -- a cron rule with no lease (its pending field empty)
  return string.sub(rule, 1, 3) == 'c||'
end

local function parseEvery(rule)  -- start, every, grace (integer ms) and misfire; nil if not one
  local start, every, misfire, grace = string.match(rule, '^e|(%-?%d+)|(%d+)|(%a)|(%d+)$')
  return tonumber(start), tonumber(every), misfire, tonumber(grace)
end

local function splitEvery(rule)  -- start (text) and tail 'every|misfire|grace'; nil if not one
  return string.match(rule, '^e|(%-?%d+)|(.*)$')
end

local function everyRule(start, tail)  -- start: integer ms
  return 'e|' .. string.format('%d', start) .. '|' .. tail
end

local function parseCron(rule)  -- pending, lease ('' when idle) and tail; nil if not one
  return string.match(rule, '^c|([^|]*)|([^|]*)|(.*)$')
end

local function cronRule(pending, lease, tail)  -- cronRule('', '', tail): the idle rule
  return 'c|' .. pending .. '|' .. lease .. '|' .. tail
end



local function claimEvery(queueKey, id, rule, due, nowMs, kept, recurring)
  local start, every, misfire, grace = parseEvery(rule)
  local pending = timeMs(due)
  local nextMs = start
  if nowMs >= start then
    local latest = start + math.floor((nowMs - start) / every) * every
    if latest < pending then  -- none in [pending, now]: resume at the first after
      local from = math.max(pending, nowMs + 1)
      nextMs = start + math.ceil((from - start) / every) * every
    else
      nextMs = latest + every
      if misfire == 'c' or nowMs - latest <= grace then
        local n = #kept
        kept[n + 1], kept[n + 2] = id, timeString(latest / 1000)
      end
    end
  end
  local moved = timeString(nextMs / 1000)
  redis.call('ZADD', queueKey, moved, id)
  local n = #recurring
  recurring[n + 1], recurring[n + 2], recurring[n + 3], recurring[n + 4] = id, 'e', moved, ''
end

--[[
  leaseUntil(now, leaseMs): the lease time of a batch's cron jobs; leaseCron(...): leases one,
  appending its pending occurrence to kept (README.md, "Leases and the holder-only advance").
]]



local function leaseUntil(now, leaseMs)
  return timeString(dueTime(now, leaseMs, 'ms') + halfMicrosecond)
end

local function leaseCron(queueKey, rulesKey, id, rule, due, lease, kept, recurring)
  local pending, held, tail = parseCron(rule)
  if pending == '' or tonumber(held) ~= tonumber(due) then
    pending = due  -- not leased, or moved since its lease: it resumes at its due time
  end
  local leased = cronRule(pending, lease, tail)
  redis.call('HSET', rulesKey, id, leased)
  redis.call('ZADD', queueKey, lease, id)
  local n = #kept
  kept[n + 1], kept[n + 2] = id, pending
  n = #recurring
  recurring[n + 1], recurring[n + 2], recurring[n + 3], recurring[n + 4] = id, 'c', lease, leased
end


local function claimRecurring(queueKey, rulesKey, found, ids, rules, cutoff, now, leaseMs)
  local plain, kept, recurring = {}, {}, {#ids}
  local nowMs = cutoffMs(cutoff)
  local lease = false
  for i = 1, #ids do
    local id, rule, due = ids[i], rules[i], found[2 * i]
    if not rule then
      plain[#plain + 1] = id
      local n = #kept
      kept[n + 1], kept[n + 2] = id, due
    elseif isEvery(rule) then
      claimEvery(queueKey, id, rule, due, nowMs, kept, recurring)
    else
      lease = lease or leaseUntil(now, leaseMs)
      leaseCron(queueKey, rulesKey, id, rule, due, lease, kept, recurring)
    end
  end
  return plain, kept, recurring
end

--[[
  removeOrReschedule(queueKey, plain, offset, precision, now, cutoff): removes the plain ids
  (offset '') or moves them all to one due time, never at or before the cutoff; that time or false.
]]

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


local function removeOrReschedule(queueKey, plain, offset, precision, now, cutoff)
  if #plain == 0 then
    return false
  end
  if offset == '' then
    chunked('ZREM', queueKey, plain)
    return false
  end
  local due = dueTime(now, tonumber(offset), precision)
  local limit = tonumber(cutoff)
  if due <= limit then
    due = limit + halfMicrosecond
  end
  local newDue = timeString(due)
  local members = {}
  for i = 1, #plain do
    members[2 * i - 1] = newDue
    members[2 * i] = plain[i]
  end
  chunked('ZADD', queueKey, members)
  return newDue
end

--[[
  appendJobs(reply, found, jobPrefix, data): appends each job ("Jobs in a reply"), its data from
  data (by id) or read here; readJobs: each id's data by id. Both: false, error if not a hash.
]]
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



local now = rcall('TIME')
if cutoff == '' then
  cutoff = timeString(nowSeconds(now))
end

-- Every read that can fail comes before the first write (README.md, "No partial writes").
local found = redis.pcall(
  'ZRANGEBYSCORE', queueKey, '-inf', cutoff, 'WITHSCORES', 'LIMIT', 0, count)
if found.err then
  return checkTypes({queueKey, 'zset'}) or found
end
if #found == 0 then
  return {cutoff, false, queueHead(queueKey), false}
end
local reply = {cutoff, false, false, false}
local wrong = checkTypes({rulesKey, 'hash'})
if wrong then
  return wrong
end

local ids = {}
for i = 1, #found, 2 do
  ids[#ids + 1] = found[i]
end

-- The jobs' data too, before the first write: when a job of the batch recurs, all of it by id
-- (which jobs are handed out is known after the claim); else straight into the reply.
local rules = readRules(rulesKey, ids)
local read, unreadable
if rules then
  read, unreadable = readJobs(jobPrefix, ids)
else
  read, unreadable = appendJobs(reply, found, jobPrefix)
end
if not read then
  return unreadable
end

local plain = ids
if rules then
  plain, found, reply[4] = claimRecurring(
    queueKey, rulesKey, found, ids, rules, cutoff, now, tonumber(ARGV[6]))
end
reply[2] = removeOrReschedule(queueKey, plain, offset, ARGV[5], now, cutoff)
reply[3] = queueHead(queueKey)

return rules and appendJobs(reply, found, jobPrefix, read) or reply
