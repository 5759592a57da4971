--[[
  Check a presented verification code, atomically; a code works once.

  Implements exactly MemoryCodeStore.verify, in this order:
    1. no record                                  -> missing  (nothing counted)
    2. now >= expiresAt                           -> expired  (nothing counted)
    3. attempts >= maxAttempts                    -> burned   (nothing counted)
    4. attempts + 1; compare the hashes in constant time (every byte is visited, differences are
       OR-ed together; both are 64 hex chars, so lengths never differ for a well-formed call)
       - equal                                    -> ok: the record is deleted (burn on success)
       - different                                -> wrong; when attempts reached maxAttempts the
                                                     sealed code is removed (burned: never resent)

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   code hash                 keys.code(key)   (key: <purpose>:<channel>:<recipientId>)

    ARGV[1]   hash                      hex HMAC of the presented code
    ARGV[2]   now                       epoch ms (the caller's clock)
    ARGV[3]   maxAttempts

  Output:
     0  ok
    -1  missing
    -2  expired
    -3  burned
    -4  wrong
]]
local key = KEYS[1]
local presented = ARGV[1]
local now = tonumber(ARGV[2])
local maxAttempts = tonumber(ARGV[3])

local current = redis.call('HMGET', key, 'hash', 'expiresAt', 'attempts')
local stored = current[1]
if not stored then
  return -1
end
if now >= tonumber(current[2]) then
  return -2
end
if tonumber(current[3]) >= maxAttempts then
  return -3
end

local attempts = redis.call('HINCRBY', key, 'attempts', 1)

local diff = 0
if #presented ~= #stored then
  diff = 1
end
for i = 1, #stored do
  local a = string.byte(presented, i) or 0
  diff = bit.bor(diff, bit.bxor(a, string.byte(stored, i)))
end

if diff == 0 then
  redis.call('DEL', key)
  return 0
end
if attempts >= maxAttempts then
  redis.call('HDEL', key, 'sealed')
end
return -4
