--[[
  Reads one page of the schedule with each job's data: an export pages through the whole
  schedule with it, as scheduled_jobs() does (same order, same anchor), one call a page.

  The job hashes are read at ARGV[1] .. id, a key this script derives: on Redis Cluster the
  prefix must carry a hash tag so that they share the queue's slot.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time (Unix seconds)

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] the most jobs in the page (an integer >= 1)
    ARGV[3] anchor id, or '' for the first page
    ARGV[4] anchor's due time (Unix seconds), as the previous page gave it

  Output:
    {id, due time, n, field1, value1, ... fieldn, valuen, ...}   (as claim-2.lua's jobs)
]]
local queueKey = KEYS[1]
local jobPrefix = ARGV[1]

--- @include "pageStart"
--- @include "appendJobs"

local start = pageStart(queueKey, ARGV[3], ARGV[4])
local found = redis.call('ZRANGE', queueKey, start, start + tonumber(ARGV[2]) - 1, 'WITHSCORES')
return appendJobs({}, found, jobPrefix)
