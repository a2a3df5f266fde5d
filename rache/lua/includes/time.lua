--[[
  dueTime(time, offsetMs, precision): the due time, Unix seconds, of a job due offsetMs
  milliseconds after the server time `time` (the reply of TIME: {seconds, microseconds}).
  precision 's' counts from the whole second (the result is an integer when offsetMs is a
  multiple of 1000, as rache 0.3.1 stored it); 'ms' counts from the millisecond; 'at' takes
  offsetMs as the due time itself, milliseconds since the epoch (an import of known times).
]]
local function dueTime(time, offsetMs, precision)
  if precision == 'at' then
    return offsetMs / 1000
  end
  local seconds = tonumber(time[1])
  if precision == 's' then
    return seconds + offsetMs / 1000
  end
  return (seconds * 1000 + math.floor(tonumber(time[2]) / 1000) + offsetMs) / 1000
end

-- Exact text of a Unix time: 17 significant digits read back as the same double.
local function timeString(t)
  return string.format('%.17g', t)
end
