--[[
  Undo a send that code-issue.lua recorded but whose message could not be queued, so that the
  cooldown does not hold back the client's retry.

  Implements exactly MemoryCodeStore.withdraw:
    - no record, another code (generation), or another send since (lastSentAt ~= sentAt) -> 0
    - a created code (no previousSentAt)    -> the record is deleted                      -> 1
    - a re-sent code                        -> lastSentAt = previousSentAt, sends - 1,
                                               delivery = failed, PEXPIREAT recomputed   -> 1

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   code hash                 keys.code(key)   (key: <purpose>:<channel>:<recipientId>)

    ARGV[1]   generation                of the code issue created or re-sent
    ARGV[2]   sentAt                    the lastSentAt issue wrote (epoch ms)
    ARGV[3]   previousSentAt            the lastSentAt before it, or '' for a created code
    ARGV[4]   resendMs

  Output:
    1  undone
    0  nothing changed
]]
local key = KEYS[1]
local current = redis.call('HMGET', key, 'generation', 'lastSentAt', 'expiresAt')
if current[1] ~= ARGV[1] or current[2] ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('DEL', key)
  return 1
end
redis.call('HSET', key, 'lastSentAt', ARGV[3], 'delivery', 'failed')
redis.call('HINCRBY', key, 'sends', -1)
redis.call('PEXPIREAT', key, math.max(tonumber(current[3]), tonumber(ARGV[3]) + tonumber(ARGV[4])))
return 1
