--[[
  Deletes the data and runs of jobs not scheduled, and leaves alone those scheduled again
  meanwhile: a one-shot job's data once handed out, or data left behind (rache orphans).

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] '1' to delete, '0' only to say what it would delete
    ARGV[3] history prefix: a job's runs are the list ARGV[3] .. id
    ARGV[4 ..] the job ids
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the ids, among ARGV[3 ..], not scheduled and with data: deleted if ARGV[2] is '1'
]]
local rcall = redis.call
local queueKey = KEYS[1]
local jobPrefix = ARGV[1]
local delete = ARGV[2] == '1'
local historyPrefix = ARGV[3]

--- @include "checkTypes"
--- @include "calls"

local replay = callReplay()
if replay then
  return replay
end
local wrong = checkTypes({queueKey, 'zset'})
if wrong then
  return wrong
end

local found, hashes = {}, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if not rcall('ZSCORE', queueKey, id) and rcall('EXISTS', jobPrefix .. id) == 1 then
    found[#found + 1] = id
    hashes[#hashes + 1], hashes[#hashes + 2] = jobPrefix .. id, 'hash'
    hashes[#hashes + 1], hashes[#hashes + 2] = historyPrefix .. id, 'list'
  end
end
if not delete or #found == 0 then
  return found
end
-- DEL takes a key of any type: only a job's hash goes, never another program's key there.
wrong = checkTypes(hashes)
if wrong then
  return wrong
end
for i = 1, #found do
  rcall('DEL', jobPrefix .. found[i], historyPrefix .. found[i])
end
return callRecord(found)
