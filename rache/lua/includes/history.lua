--[[
  Run history (README.md, "Run history"): <prefix>history:<id>, a list of a job's runs,
  newest first, each record one string: state (1 byte: r running, s succeeded, f failed,
  k skipped), 't' and the 8 bytes of the run token or 'n', then
  due|claimed ms|deadline ms|attempts|finished ms|poller name|error.

  runSuffix(now, timeoutMs, name): what follows the due time in a run just handed out (one
  per batch and timeout); pushRun(key, bound, token, due, suffix, expireMs): LPUSH it, LTRIM
  only when the list grows past bound, PEXPIRE when expireMs is given (a job that left the
  schedule); pcall'd: a key of another type there, or a user whose ACL refuses the list
  commands (a line from before runs), goes without, and the script writes on; parseRun(record): its fields; findRun(key, due, token): the newest
  record of that run and its index, or false (an error reply if key is not a list);
  dropRun(key, due, token): removes that run's record while it is running (a put-back; pcall'd
  as pushRun).

  newestRun(historyPrefix, id): the job's newest run handed out (skipped runs are not): its
  state byte, its deadline (ms, a number), its due time (text) and how many skipped runs are
  recorded ahead of it; nothing if it has none (or its key is not a list). Every read of the
  history by the overlap policies (includes/overlap.lua) goes through it.
  pushSkipped(key, bound, due, now, name, reason, ahead): records an occurrence of due not
  handed out ('k', finished at now, the reason as its error), pcall'd as pushRun, never
  pushing the run handed out before it (ahead: skipped runs ahead of it) out of the bound:
  when bound - 1 skips are ahead of it, the newest one is replaced; bound 1 records none.
]]
local function runSuffix(now, timeoutMs, name)
  local claimed = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  return string.format('|%d|%d|0||', claimed, claimed + timeoutMs) .. name .. '|'
end

local function pushRecord(key, bound, record, expireMs)
  local length = redis.pcall('LPUSH', key, record)
  if type(length) == 'number' then
    if length > bound then
      redis.pcall('LTRIM', key, 0, bound - 1)
    end
    if expireMs then
      redis.pcall('PEXPIRE', key, expireMs)
    end
  end
end

local function pushRun(key, bound, token, due, suffix, expireMs)
  local record = token and ('rt' .. token .. due .. suffix) or ('rn' .. due .. suffix)
  pushRecord(key, bound, record, expireMs)
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

local function pushSkipped(key, bound, due, now, name, reason, ahead)
  local at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local record = string.format('kn%s|%d|%d|0|%d|', due, at, at, at) .. name .. '|' .. reason
  if bound < 2 then
    return  -- no room beside the run it skips for
  elseif ahead >= bound - 1 then
    redis.pcall('LSET', key, 0, record)  -- the run it skips for stays: the newest skip replaced
  else
    pushRecord(key, bound, record)
  end
end

local function newestRun(historyPrefix, id)
  local key = historyPrefix .. id
  local records = redis.pcall('LRANGE', key, 0, 0)  -- LRANGE: in the ACL line
  if not records.err and records[1] and string.sub(records[1], 1, 1) == 'k' then
    records = redis.pcall('LRANGE', key, 0, -1)  -- skipped runs ahead of it: at most the bound
  end
  if records.err then
    return nil
  end
  for i = 1, #records do
    if string.sub(records[i], 1, 1) ~= 'k' then
      local state, _, due, _, deadline = parseRun(records[i])
      return state, tonumber(deadline), due, i - 1
    end
  end
  return nil
end

local function findRun(key, due, token)
  local records = redis.pcall('LRANGE', key, 0, -1)
  if records.err then
    return false, records
  end
  local wanted = tonumber(due)
  for i = 1, #records do
    local _, recordToken, recordDue = parseRun(records[i])
    if recordToken == token and tonumber(recordDue) == wanted then
      return records[i], i - 1
    end
  end
  return false
end

local function dropRun(key, due, token)
  local record = findRun(key, due, token)
  if record and string.sub(record, 1, 1) == 'r' then
    redis.pcall('LREM', key, 1, record)
  end
end
