--[[
  Create (or replace) a flow record, atomically.

  Mirrors MemoryFlowStore.create: the whole record is replaced (no stale optional fields survive,
  and a replaced login's job is no longer counted as taken), it stays readable until
  expiresAt + tombstoneMs, and a non-final flow is indexed for expiry sweeps.

  Input (keys from server/src/store/keys.ts; all three carry the flow's shard tag: one slot):
    KEYS[1]   flow hash                 keys.flow(kind, id)
    KEYS[2]   due sorted set            keys.dueSetOf(id)   (score expiresAt, member keys.dueMember(kind, id))
    KEYS[3]   taken marker              keys.flowTaken(kind, id)   (deleted: it belonged to the replaced record)

    ARGV[1]   due-set member            keys.dueMember(kind, id)
    ARGV[2]   expiresAt                 epoch ms (the due-set score)
    ARGV[3]   purgeAt                   epoch ms, integer: expiresAt + tombstoneMs (PEXPIREAT)
    ARGV[4]   '1' when the record's state is final, else '0'
    ARGV[5..] field, value, field, value, ...   every stored field, already serialised by the caller

  Output:
     0  created
]]
local flowKey = KEYS[1]
local dueKey = KEYS[2]
local member = ARGV[1]

redis.call('DEL', flowKey, KEYS[3])
redis.call('HSET', flowKey, unpack(ARGV, 5))
-- A purgeAt already in the past deletes the key at once (same as the memory store forgetting it).
redis.call('PEXPIREAT', flowKey, ARGV[3])

if ARGV[4] == '0' and redis.call('EXISTS', flowKey) == 1 then
  redis.call('ZADD', dueKey, ARGV[2], member)
else
  redis.call('ZREM', dueKey, member)
end

return 0
