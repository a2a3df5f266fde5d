--[[
  queueHead(queueKey): the earliest due time in the queue, as Redis gives the score (text),
  or false if the queue is empty. O(log n).
]]
local function queueHead(queueKey)
  return redis.call('ZRANGE', queueKey, 0, 0, 'WITHSCORES')[2] or false
end
