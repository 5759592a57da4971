--[[
  Issue a verification code, atomically: cooldown, resend of the live code, or a new code.

  Implements exactly MemoryCodeStore.issue, checks in this order:
    1. a record exists and now < lastSentAt + resendMs                  -> cooldown (nothing changes)
    2. a record exists, now < expiresAt, attempts < maxAttempts and the
       sealed code is still there                                       -> resent: lastSentAt = now,
       sends + 1, delivery = queued; expiresAt is NOT moved
    3. otherwise (no record, or expired, or burned)                     -> created: the record is
       replaced by the new code given in ARGV
  The key lives until max(expiresAt, lastSentAt + resendMs) (PEXPIREAT), so an expired or burned
  code still enforces the cooldown.

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   code hash                 keys.code(key)   (key: <purpose>:<channel>:<recipientId>)

    ARGV[1]   now                       epoch ms (the caller's clock)
    ARGV[2]   ttlMs
    ARGV[3]   resendMs
    ARGV[4]   maxAttempts
    ARGV[5]   generation                of the new code
    ARGV[6]   hash                      hex HMAC of the new code
    ARGV[7]   sealed                    the new code, encrypted

  Output:
    { 0, generation, expiresAt }        created
    { 1, generation, expiresAt, previousSentAt }   resent (previousSentAt: the lastSentAt it replaced)
    { 2, retryAfterMs }                 cooldown
]]
local key = KEYS[1]
local now = tonumber(ARGV[1])
local ttlMs = tonumber(ARGV[2])
local resendMs = tonumber(ARGV[3])
local maxAttempts = tonumber(ARGV[4])

local current = redis.call('HMGET', key, 'generation', 'expiresAt', 'lastSentAt', 'attempts', 'sealed')
if current[1] then
  local expiresAt = tonumber(current[2])
  local lastSentAt = tonumber(current[3])
  local attempts = tonumber(current[4])
  local cooldownEnds = lastSentAt + resendMs
  if now < cooldownEnds then
    return { 2, cooldownEnds - now }
  end
  if now < expiresAt and attempts < maxAttempts and current[5] then
    redis.call('HSET', key, 'lastSentAt', ARGV[1], 'delivery', 'queued')
    redis.call('HINCRBY', key, 'sends', 1)
    redis.call('PEXPIREAT', key, math.max(expiresAt, now + resendMs))
    return { 1, current[1], expiresAt, current[3] }
  end
end

local expiresAt = now + ttlMs
redis.call('DEL', key)
redis.call('HSET', key,
  'generation', ARGV[5],
  'hash', ARGV[6],
  'sealed', ARGV[7],
  'attempts', 0,
  'createdAt', ARGV[1],
  'expiresAt', expiresAt,
  'lastSentAt', ARGV[1],
  'sends', 1,
  'delivery', 'queued')
redis.call('PEXPIREAT', key, math.max(expiresAt, now + resendMs))
return { 0, ARGV[5], expiresAt }
