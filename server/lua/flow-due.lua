--[[
  Non-final flows whose expiresAt <= now, oldest first, at most `limit`.

  The due set only ever holds non-final flows, but a member can outlive its hash (the hash hit its
  PEXPIREAT purge time before any sweeper expired it). Such stale members, and any member whose
  flow is (unexpectedly) final, are skipped and removed, so the result matches MemoryFlowStore,
  which never reports a forgotten flow.

  Note: the flow hashes are derived from ARGV[3] rather than passed in KEYS (the member list is
  only known inside the script); fine on a single Redis, not Redis Cluster safe.

  Input:
    KEYS[1]   due sorted set            ${prefix}flows:due   (score expiresAt, member ${kind}:${id})

    ARGV[1]   now                       epoch ms
    ARGV[2]   limit                     integer >= 1
    ARGV[3]   flow key prefix           ${prefix}flow:   (flow hash = ARGV[3] .. member)
    ARGV[4]   maxStale                  at most this many stale members are removed per call

  Output:
    array of members (${kind}:${id}), by expiresAt ascending
]]
local dueKey = KEYS[1]
local now = ARGV[1]
local limit = tonumber(ARGV[2])
local flowPrefix = ARGV[3]
local maxStale = tonumber(ARGV[4])

-- Must match FINAL_STATES in protocol/src/states.ts (a contract test checks it).
local FINAL = { redeemed = true, cancelled = true, expired = true, failed = true }

local out = {}
local offset = 0
local stale = 0
while #out < limit do
  local want = math.min(limit - #out, 500)
  local batch = redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'LIMIT', offset, want)
  if #batch == 0 then
    break
  end
  for _, member in ipairs(batch) do
    local state = redis.call('HGET', flowPrefix .. member, 'state')
    if state and not FINAL[state] then
      out[#out + 1] = member
      offset = offset + 1
    elseif stale < maxStale then
      redis.call('ZREM', dueKey, member)
      stale = stale + 1
    else
      offset = offset + 1
    end
  end
end

return out
