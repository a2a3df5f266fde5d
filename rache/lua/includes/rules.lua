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
