--[[
  Reads one page of the schedule, earliest first, after a given job: scheduled_jobs() pages
  through the whole set with it so that no single reply holds a million jobs.

  The page starts right after the anchor job when it is still where it was. If the anchor
  has moved or left, it starts at the first job due at the anchor's time, and the caller
  skips those at that time whose id sorts at or before the anchor's.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)

    ARGV[1] the most jobs in the page (an integer >= 1)
    ARGV[2] anchor id, or '' for the first page
    ARGV[3] anchor's due time (Unix seconds), as the previous page gave it

  Output:
    {exact, id1, due1, id2, due2, ...} where exact is 1 when the page starts right after the
    anchor, 0 when the caller must skip
]]
local rcall = redis.call
local queueKey = KEYS[1]
local count = tonumber(ARGV[1])
local anchor = ARGV[2]

local start, exact = 0, 1
if anchor ~= '' then
  local due = rcall('ZSCORE', queueKey, anchor)
  if due and tonumber(due) == tonumber(ARGV[3]) then
    start = rcall('ZRANK', queueKey, anchor) + 1
  else
    start = rcall('ZCOUNT', queueKey, '-inf', '(' .. ARGV[3])
    exact = 0
  end
end

local reply = rcall('ZRANGE', queueKey, start, start + count - 1, 'WITHSCORES')
table.insert(reply, 1, exact)
return reply
