--[[
  Reads one job: its due time, its data and its recurrence rule, in one consistent snapshot.

  Input:
    KEYS[1] queue key: sorted set, job id -> due time
    KEYS[2] job key: hash, the job's data
    KEYS[3] recurring key: hash, job id -> rule

    ARGV[1] job id

  Output:
    {due time or false, {field1, value1, ...}, rule or false}
]]
local rcall = redis.call

return {
  rcall('ZSCORE', KEYS[1], ARGV[1]),
  rcall('HGETALL', KEYS[2]),
  rcall('HMGET', KEYS[3], ARGV[1])[1],
}
