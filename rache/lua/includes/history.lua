--[[
  Run history (README.md, "Run history"): a job's newest run in <prefix>lastrun (a hash, job
  id -> record; field '' holds the sweep's place), the runs before it in <prefix>history:<id>
  (a list, newest first, at most the bound less one). A record is one string: state (1 byte:
  r running, s succeeded, f failed, k skipped), 't' and the 8 bytes of the run token or 'n',
  then due|claimed ms|deadline ms|attempts|finished ms|poller name|error.

  runSuffix(now, timeoutMs, name): what follows the due time in a run just handed out (one
  per batch and timeout); readNewest(key, ids): the newest record of each id that has one,
  how many, and the sweep's place (HMGET, 1,000 a call), or false and the error;
  newestRun(runs, id), pushSkipped(...): see below (the overlap policies' seam);
  keepOlder(listKey, record, bound): the newest record, replaced, LPUSHed on the job's list,
  LTRIMmed past bound - 1 (pcall'd: a list of another type, or an ACL of before, drops it);
  setNewest(key, pairs, first): HSET of id, record pairs from first on; dropped(key): after
  an HDEL, DEL the hash if only the sweep's place is left; parseRun(record): its fields;
  findRun(key, listKey, id, due, token): that run's record and where it is (true: the newest,
  else its list index), or false (and an error reply if a key has another type);
  dropRun(key, listKey, id, due, token): removes that run while it is running (a put-back),
  the run before it becoming the newest again; sweepRuns(...): see README.md, "Run history".
]]
--- @include "chunked"
--- @include "checkTypes"

local function runSuffix(now, timeoutMs, name)
  local claimed = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  return string.format('|%d|%d|0||', claimed, claimed + timeoutMs) .. name .. '|'
end

-- The sweep's place: field '' of <prefix>lastrun (no job id is empty), 'cursor|ms', padded
-- to 100 bytes: longer than hash-max-listpack-value (64 by default), so that the hash is a
-- hashtable from the claim's first write on, not a listpack, which costs O(entries) a field
-- (an HSET of 1,000 fields into one: milliseconds).
local SWEEP_FIELD = ''
local function sweepPlace(cursor, ms)
  local place = cursor .. '|' .. string.format('%d', ms)
  return place .. string.rep(' ', 100 - #place)
end

-- dropped(key): after an HDEL, the hash goes when only the sweep's place is left in it.
local function dropped(key)
  if redis.pcall('HLEN', key) == 1 and redis.call('HMGET', key, SWEEP_FIELD)[1] then
    redis.call('DEL', key)
  end
end

local function readNewest(key, ids)
  local newest, count, place = {}, 0, false
  for first = 1, #ids, 1000 do
    local last = math.min(first + 999, #ids)
    local records
    if first == 1 then  -- the sweep's place in the same read
      records = redis.pcall('HMGET', key, SWEEP_FIELD, unpack(ids, first, last))
    else
      records = redis.pcall('HMGET', key, unpack(ids, first, last))
    end
    if records.err then
      return false, checkTypes({key, 'hash'}) or records
    end
    local shift = first - 1
    if first == 1 then
      place, shift = records[1], -1
    end
    for i = (first == 1) and 2 or 1, #records do
      if records[i] then
        newest[ids[shift + i]], count = records[i], count + 1
      end
    end
  end
  return newest, count, place
end

local function parseRun(record)  -- state, token ('' if none), due, and the fields after it
  local state, token, rest = string.sub(record, 1, 1), '', string.sub(record, 3)
  if string.sub(record, 2, 2) == 't' then
    token, rest = string.sub(record, 3, 10), string.sub(record, 11)
  end
  local due, claimed, deadline, attempts, finished, name, error = string.match(
    rest, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return state, token, due, claimed, deadline, attempts, finished, name, error
end

local function keepOlder(listKey, record, bound)
  if bound <= 1 then
    return
  end
  local length = redis.pcall('LPUSH', listKey, record)
  if type(length) == 'number' and length > bound - 1 then
    redis.pcall('LTRIM', listKey, 0, bound - 2)
  end
end

--[[
  newestRun(runs, id): the job's newest run handed out (skipped runs are not): its state byte,
  its deadline (ms, a number), its due time (text), how many skipped runs are recorded ahead of
  it, and the job's newest record; nothing if it has none. runs: {last = <prefix>lastrun,
  prefix = the history prefix, batch = the claim's readNewest table or nil} (includes/overlap.lua):
  the newest record from the batch (no command) or one HMGET; the list (LRANGE) only when that
  record is a skipped run. Every read of runs by the overlap policies goes through it.
]]
local function newestRun(runs, id)
  local record
  if runs.batch then
    record = runs.batch[id]
  else
    record = redis.call('HMGET', runs.last, id)[1]
  end
  if not record then
    return nil
  end
  if string.sub(record, 1, 1) ~= 'k' then
    local state, _, due, _, deadline = parseRun(record)
    return state, tonumber(deadline), due, 0, record
  end
  local older = redis.pcall('LRANGE', runs.prefix .. id, 0, -1)  -- at most the bound
  if older.err then
    return nil
  end
  for i = 1, #older do
    if string.sub(older[i], 1, 1) ~= 'k' then
      local state, _, due, _, deadline = parseRun(older[i])
      return state, tonumber(deadline), due, i, record
    end
  end
  return nil
end

--[[
  pushSkipped(runs, id, due, reason, ahead, newest): records an occurrence of due not handed
  out ('k', finished at runs.now, the reason as its error) as the job's newest run, the newest
  before it moved onto its list, never pushing the run handed out before it (ahead: skipped
  runs ahead of it; newest: the job's newest record) out of the bound: when bound - 1 skips are
  ahead of it, the newest one is replaced; bound 1 records none.
]]
local function pushSkipped(runs, id, due, reason, ahead, newest)
  local now = runs.now
  local at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local record = string.format('kn%s|%d|%d|0|%d|', due, at, at, at) .. runs.name .. '|' .. reason
  if runs.bound < 2 then
    return  -- no room beside the run it skips for
  elseif ahead < runs.bound - 1 then
    keepOlder(runs.prefix .. id, newest, runs.bound)
  end  -- else the newest skip is replaced: the run it skips for stays
  redis.call('HSET', runs.last, id, record)
  if runs.batch then
    runs.batch[id] = record
  end
end

local function setNewest(key, fields, first)  -- pcall'd: refused under memory pressure (as
  for i = first or 1, #fields, 1000 do         -- the claim's first write), none is recorded
    redis.pcall('HSET', key, unpack(fields, i, math.min(i + 999, #fields)))
  end
end

local function sameRun(record, due, token)
  local _, recordToken, recordDue = parseRun(record)
  return recordToken == token and tonumber(recordDue) == tonumber(due)
end

local function findRun(key, listKey, id, due, token)
  local newest = redis.pcall('HMGET', key, id)
  if newest.err then
    return false, checkTypes({key, 'hash'}) or newest
  end
  if newest[1] and sameRun(newest[1], due, token) then
    return newest[1], true
  end
  local records = redis.pcall('LRANGE', listKey, 0, -1)
  if records.err then
    return false, checkTypes({listKey, 'list'}) or records
  end
  for i = 1, #records do
    if sameRun(records[i], due, token) then
      return records[i], i - 1
    end
  end
  return false
end

local function dropRun(key, listKey, id, due, token)
  local record, where = findRun(key, listKey, id, due, token)
  if not record or string.sub(record, 1, 1) ~= 'r' then
    return
  end
  if where == true then  -- the newest: the one before it (if kept) is the newest again
    local before = redis.pcall('LPOP', listKey)
    if type(before) == 'string' then
      redis.call('HSET', key, id, before)
    else
      redis.call('HDEL', key, id)
      dropped(key)
    end
  else  -- on the list (rare: a put-back of an advance's older occurrence): rewritten without
    local records = redis.call('LRANGE', listKey, 0, -1)  -- it (LREM: one command more to grant)
    local kept = {}
    for i = #records, 1, -1 do  -- oldest first, for LPUSH
      if i ~= where + 1 then
        kept[#kept + 1] = records[i]
      end
    end
    redis.call('DEL', listKey)
    if #kept > 0 then
      redis.pcall('LPUSH', listKey, unpack(kept))
    end
  end
end

-- When a run was claimed and finished (ms, finished nil while running), read cheaply.
local function runTimes(record)
  local start = string.sub(record, 2, 2) == 't' and 11 or 3
  local claimed, finished = string.match(
    record, '^[^|]*|(%d*)|[^|]*|[^|]*|(%d*)|', start)
  return tonumber(claimed), tonumber(finished)
end

--[[
  sweepRuns(key, queueKey, historyPrefix, place, nowMs, ttlMs, most): a step of the sweep of
  <prefix>lastrun, from the place `place` ('cursor|ms' or false) read with the batch: it
  visits about size * elapsed * 2 / ttl fields (a pass every ttl / 2), and only once that
  reaches SWEEP_LEAST (or the size), at most `most`; a job whose newest run was claimed and
  finished more than ttlMs ago and which is not in the queue loses its runs (HDEL, and DEL of
  its list). Returns the place to store, or false to leave it (pcall'd: an ACL of before
  runs that refuses HLEN or HSCAN sweeps nothing).
]]
local SWEEP_LEAST = 16
local function sweepRuns(key, queueKey, historyPrefix, place, nowMs, ttlMs, most)
  local cursor, since = '0', nil
  if place then
    local readCursor, readSince = string.match(place, '^(%d+)|(%d+)')
    cursor, since = readCursor or '0', tonumber(readSince)
  end
  if not since or since > nowMs then  -- first step, or the clock went back
    return sweepPlace('0', nowMs)
  end
  local size = redis.pcall('HLEN', key)
  if type(size) ~= 'number' or size <= 1 then
    return false
  end
  local due = (size - 1) * (nowMs - since) * 2 / ttlMs
  if due < math.min(SWEEP_LEAST, size - 1) then
    return false  -- not yet: the time since counts on
  end
  local visits, reached = math.ceil(due), nowMs
  if visits > most then  -- a backlog: this step covers part of the time since
    visits, reached = most, since + math.floor((nowMs - since) * most / due)
  end
  local scanned = redis.pcall('HSCAN', key, cursor, 'COUNT', visits)
  if scanned.err then
    return false
  end
  local entries, oldest, gone = scanned[2], nowMs - ttlMs, {}
  for i = 1, #entries, 2 do
    local id = entries[i]
    if id ~= SWEEP_FIELD then
      local claimed, finished = runTimes(entries[i + 1])
      if claimed and claimed < oldest and (finished or 0) < oldest
          and not redis.call('ZSCORE', queueKey, id) then
        gone[#gone + 1] = id
        redis.call('DEL', historyPrefix .. id)
      end
    end
  end
  if #gone > 0 then
    chunked('HDEL', key, gone)
  end
  return sweepPlace(scanned[1], reached)  -- (the claim writes the batch's runs after it)
end
