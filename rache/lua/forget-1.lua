--[[
  Deletes the data of jobs that are not scheduled, and leaves alone those scheduled again
  meanwhile: a one-shot job's data once handed out, or data left behind (rache orphans).

  Input:
    KEYS[1] queue key: sorted set, job id -> due time

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] '1' to delete, '0' only to say what it would delete
    ARGV[3 ..] the job ids

  Output:
    the ids, among ARGV[3 ..], not scheduled and with data: deleted if ARGV[2] is '1'
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobPrefix = ARGV[1]
local delete = ARGV[2] == '1'

--- @include "checkTypes"

local wrong = checkTypes({queueKey, 'zset'})
if wrong then
  return wrong
end

local found = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if not rcall('ZSCORE', queueKey, id) and rcall('EXISTS', jobPrefix .. id) == 1 then
    found[#found + 1] = id
    if delete then
      rcall('DEL', jobPrefix .. id)
    end
  end
end
return found
