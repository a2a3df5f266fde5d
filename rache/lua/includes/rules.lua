--[[
  The rule strings of <prefix>recurring, parsed and built here only (README.md, "Rule
  strings"): every-N 'e|start|tail', cron 'c|pending|lease|tail'; both tails start with the
  flags: the misfire flag, then optionally the overlap flag and the run timeout (ms).
]]
local function isEvery(rule)  -- an every-N rule
  return string.sub(rule, 1, 1) == 'e'
end

local function isIdleCron(rule)  -- a cron rule with no lease (its pending field empty)
  return string.sub(rule, 1, 3) == 'c||'
end

-- start, every, grace (integer ms), misfire, overlap ('a', 'k' or 'b') and run timeout (ms: the
-- rule's, or its period, at least 60 s); nil if not one
local function parseEvery(rule)
  local start, every, misfire, overlap, timeout, grace = string.match(
    rule, '^e|(%-?%d+)|(%d+)|(%a)(%a?)(%d*)|(%d+)$')
  every = tonumber(every)
  if timeout == '' and every then
    timeout = math.max(every, 60000)  -- rache.constants.MIN_RUN_TIMEOUT
  end
  return tonumber(start), every, misfire, tonumber(grace), overlap == '' and 'a' or overlap,
    tonumber(timeout)
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

-- a cron rule's tail: its overlap ('a', 'k' or 'b') and its run timeout (ms, false: the default)
local function cronOptions(tail)
  local overlap, timeout = string.match(tail, '^%a(%a?)(%d*)|')
  return (overlap == nil or overlap == '') and 'a' or overlap, tonumber(timeout) or false
end

-- a rule's overlap policy: 'a' allow, 'k' skip, 'b' buffer_one
local function ruleOverlap(rule)
  local overlap = string.match(rule, isEvery(rule) and '^e|[^|]*|[^|]*|%a(%a?)' or
    '^c|[^|]*|[^|]*|%a(%a?)')
  return (overlap == nil or overlap == '') and 'a' or overlap
end

local function cronRule(pending, lease, tail)  -- cronRule('', '', tail): the idle rule
  return 'c|' .. pending .. '|' .. lease .. '|' .. tail
end

-- A rule the claim can act on (README.md, "Rule strings"), checked before its first write:
-- every-N, every field an integer and the period >= 1; cron, the pending occurrence and the
-- lease both empty or both times, the flags and grace as written. Anything else (a value
-- written by hand, by another program, cut short) is set aside, never raised mid-script.
local function flagsParse(flags)  -- '<misfire>[<overlap>[<run timeout ms>]]', as wire.split_flags
  local misfire, overlap, timeout = string.match(flags or '', '^([cs])([akb]?)(%d*)$')
  return misfire ~= nil and (overlap ~= '' or timeout == '') and
    (timeout == '' or tonumber(timeout) >= 1)
end

local function ruleParses(rule)
  if isEvery(rule) then
    local start, every, _, grace = parseEvery(rule)
    return start ~= nil and every ~= nil and every >= 1 and grace ~= nil
      and flagsParse(string.match(rule, '^e|[^|]*|[^|]*|([^|]*)|'))
  end
  local pending, lease, tail = parseCron(rule)
  if not pending or string.sub(rule, 1, 2) ~= 'c|' then
    return false
  end
  if (pending == '') ~= (lease == '') then
    return false
  end
  if pending ~= '' and (not tonumber(pending) or not tonumber(lease)) then
    return false
  end
  local flags = string.match(tail, '^([^|]*)|%d+|%d+|[^|]+|.+$')
  return flags ~= nil and flagsParse(flags)
end
