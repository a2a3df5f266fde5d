--[[
  Deletes the data of jobs not scheduled (a one-shot job's once handed out, data left behind),
  and their runs only when asked (a reshard's move); spares jobs scheduled again meanwhile.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] newest runs key: hash, job id -> its newest run (README.md, "Run history")
    KEYS[3] call record key: <prefix>call:<call id> (README.md, "Call records")

    ARGV[1] job key prefix: a job's hash is ARGV[1] .. id
    ARGV[2] '1' to delete the data, '2' the data and the runs, '0' only to say what it would
    ARGV[3] history prefix: a job's runs before its newest are the list ARGV[3] .. id
    ARGV[4 ..] the job ids
    ARGV[last] the call id (README.md, "Call records"), taken off ARGV by `calls`

  Output:
    the ids, among ARGV[4 ..], not scheduled and with data: deleted unless ARGV[2] is '0'
]]
local rcall = redis.call
local queueKey = KEYS[1]
local lastKey = KEYS[2]
local jobPrefix = ARGV[1]
local delete = ARGV[2] ~= '0'
local runs = ARGV[2] == '2'
local historyPrefix = ARGV[3]

--- @include "checkTypes"
--- @include "calls"
--- @include "chunked"
--- @include "history"

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
    if runs then
      hashes[#hashes + 1], hashes[#hashes + 2] = historyPrefix .. id, 'list'
    end
  end
end
if not delete or #found == 0 then
  return found
end
-- DEL takes a key of any type: only a job's hash goes, never another program's key there.
wrong = (runs and checkTypes({lastKey, 'hash'})) or checkTypes(hashes)
if wrong then
  return wrong
end
for i = 1, #found do
  if runs then
    rcall('DEL', jobPrefix .. found[i], historyPrefix .. found[i])
  else
    rcall('DEL', jobPrefix .. found[i])
  end
end
if runs then
  chunked('HDEL', lastKey, found)
  dropped(lastKey)
end
return callRecord(found)
