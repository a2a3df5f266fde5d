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

-- A rule the claim can act on (README.md, "Rule strings"), checked before its first write:
-- every-N, every field an integer and the period >= 1; cron, the pending occurrence and the
-- lease both empty or both times, the flags and grace as written. Anything else (a value
-- written by hand, by another program, cut short) is set aside, never raised mid-script.
local function ruleParses(rule)
  if isEvery(rule) then
    local start, every, misfire, grace = parseEvery(rule)
    return start ~= nil and every ~= nil and every >= 1 and grace ~= nil
      and (misfire == 'c' or misfire == 's')
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
  return string.match(tail, '^[cs]|%d+|%d+|[^|]+|.+$') ~= nil
end
