--[[
  Compare-and-set transition of one flow, atomically.

  Implements exactly MemoryFlowStore.transition, checks in this order:
    1. no record                                                   -> not_found
    2. to ~= 'expired', current state not final, expiresAt <= now -> expired_due
    3. current state not in the `from` list                        -> invalid_transition
    4. to == 'expired' and expiresAt > now                         -> invalid_transition
    5. requireUserId given and ~= stored userId (or none stored)   -> not_user
    6. otherwise: apply the patch, set state, version + 1; when the new state is final,
       drop it from the due set and keep the hash (and its taken marker) only tombstoneMs
       longer (PEXPIRE).

  FINAL (final states) is prepended by server/src/store/lua-scripts.ts from protocol's FINAL_STATES.

  Input (keys from server/src/store/keys.ts; all three carry the flow's shard tag: one slot):
    KEYS[1]   flow hash                 keys.flow(kind, id)
    KEYS[2]   due sorted set            keys.dueSetOf(id)
    KEYS[3]   taken marker              keys.flowTaken(kind, id)   (may not exist)

    ARGV[1]   to                        target state
    ARGV[2]   now                       epoch ms
    ARGV[3]   tombstoneMs               integer ms
    ARGV[4]   '1' when requireUserId is given, else '0'
    ARGV[5]   requireUserId             (ignored unless ARGV[4] == '1')
    ARGV[6]   due-set member            keys.dueMember(kind, id)
    ARGV[7]   JSON                      { "from": [state, ...],
                                          "set":  { field: value, ... }   values already serialised,
                                          "del":  [field, ...] }          patch keys given as undefined

  Output: { code, record }  where record is the flat HGETALL of the flow
     0  ok                  record after the transition
    -1  not_found           (no record element)
    -2  expired_due         current record
    -3  invalid_transition  current record
    -4  not_user            current record
]]
local flowKey = KEYS[1]
local dueKey = KEYS[2]

if redis.call('EXISTS', flowKey) == 0 then
  return { -1 }
end

local to = ARGV[1]
local now = tonumber(ARGV[2])
local current = redis.call('HMGET', flowKey, 'state', 'expiresAt', 'userId')
local state = current[1]
local expiresAt = tonumber(current[2])
local userId = current[3]

if to ~= 'expired' and not FINAL[state] and expiresAt <= now then
  return { -2, redis.call('HGETALL', flowKey) }
end

local args = cjson.decode(ARGV[7])
local allowed = false
for _, from in ipairs(args.from) do
  if from == state then
    allowed = true
    break
  end
end
if not allowed then
  return { -3, redis.call('HGETALL', flowKey) }
end

if to == 'expired' and expiresAt > now then
  return { -3, redis.call('HGETALL', flowKey) }
end

if ARGV[4] == '1' and userId ~= ARGV[5] then
  return { -4, redis.call('HGETALL', flowKey) }
end

-- Apply the patch.
for field, value in pairs(args.set) do
  redis.call('HSET', flowKey, field, value)
end
for _, field in ipairs(args.del) do
  redis.call('HDEL', flowKey, field)
end

redis.call('HSET', flowKey, 'state', to)
redis.call('HINCRBY', flowKey, 'version', 1)

local record = redis.call('HGETALL', flowKey)
if FINAL[to] then
  redis.call('ZREM', dueKey, ARGV[6])
  redis.call('PEXPIRE', flowKey, ARGV[3])
  -- The taken marker with it, to the millisecond (as login-take.lua: PEXPIRETIME on Redis 7+).
  local hasAt, at = pcall(redis.call, 'PEXPIRETIME', flowKey)
  if hasAt and at > 0 then
    redis.call('PEXPIREAT', KEYS[3], at)
  else
    redis.call('PEXPIRE', KEYS[3], ARGV[3])
  end
end

return { 0, record }
