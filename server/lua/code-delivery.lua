--[[
  Record where a code's message stands, if the record still holds that code.

  Mirrors MemoryCodeStore.setDelivery: a job of a code that was since used, replaced or purged
  must not touch the record of its successor.

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   code hash                 keys.code(key)   (key: <purpose>:<channel>:<recipientId>)

    ARGV[1]   generation                of the code the job was for
    ARGV[2]   delivery                  queued | sent | failed | skipped

  Output:
    1  updated
    0  no such record, or it holds another code
]]
if redis.call('HGET', KEYS[1], 'generation') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'delivery', ARGV[2])
return 1
