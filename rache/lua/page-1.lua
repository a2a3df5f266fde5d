--[[
  Reads one page of the schedule, earliest first, strictly after the anchor job in the
  schedule's order (README.md, "Paging").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time

    ARGV[1] the most jobs in the page (an integer >= 1)
    ARGV[2] anchor id, or '' for the first page
    ARGV[3] anchor's due time, as the previous page gave it

  Output:
    {id1, due1, id2, due2, ...}
]]
local queueKey = KEYS[1]

--- @include "pageStart"

local start = pageStart(queueKey, ARGV[2], ARGV[3])
return redis.call('ZRANGE', queueKey, start, start + tonumber(ARGV[1]) - 1, 'WITHSCORES')
