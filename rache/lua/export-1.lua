--[[
  Reads one page of the schedule with each job's data, in the order and from the anchor of
  page-1.lua (README.md, "Paging").

  Input:
    KEYS[1] queue key: sorted set, job id -> due time

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] the most jobs in the page (an integer >= 1)
    ARGV[3] anchor id, or '' for the first page
    ARGV[4] anchor's due time, as the previous page gave it

  Output:
    {id, due time, n, field1, value1, ... fieldn, valuen, ...}   (README.md, "Jobs in a reply")
]]
local queueKey = KEYS[1]
local jobPrefix = ARGV[1]

--- @include "pageStart"
--- @include "appendJobs"

local start = pageStart(queueKey, ARGV[3], ARGV[4])
local found = redis.call('ZRANGE', queueKey, start, start + tonumber(ARGV[2]) - 1, 'WITHSCORES')
local reply, wrong = appendJobs({}, found, jobPrefix)
return reply or wrong
