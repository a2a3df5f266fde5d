--[[
  memoryFull(queueKey, id, due): true when Redis refuses the writes that may add memory
  (maxmemory reached under noeviction: README.md, "Memory pressure"). It probes with a ZADD XX
  of a job at the very score it has (as ZRANGEBYSCORE gave it), which changes nothing when
  allowed and, refused, writes nothing: Redis refuses such a command only as a script's
  first write, so the probe runs before the claim's first write.
]]
local function memoryFull(queueKey, id, due)
  local probe = redis.pcall('ZADD', queueKey, 'XX', due, id)
  return type(probe) == 'table' and probe.err ~= nil
    and string.find(probe.err, 'OOM', 1, true) ~= nil
end
