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
