--[[
  Non-final flows whose expiresAt <= now, oldest first, at most `limit`.

  The due set only ever holds non-final flows, but a member can outlive its hash (the hash hit its
  PEXPIREAT purge time before any sweeper expired it). Such stale members, and any member whose
  flow is (unexpectedly) final, are skipped and removed, so the result matches MemoryFlowStore,
  which never reports a forgotten flow.

  The flow hashes are only known here (from the members), so their key comes as a template from
  keys.ts (flowTemplate): ARGV[3] .. member .. ARGV[4]. Fine on a single Redis; Redis Cluster
  needs the due set and the hashes in one slot.

  FINAL (final states) is prepended by server/src/store/lua-scripts.ts from protocol's FINAL_STATES.

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   due sorted set            keys.dueSet()   (score expiresAt, member keys.dueMember(kind, id))

    ARGV[1]   now                       epoch ms
    ARGV[2]   limit                     integer >= 1
    ARGV[3]   flow key, before member   keys.flowTemplate().before
    ARGV[4]   flow key, after member    keys.flowTemplate().after
    ARGV[5]   maxStale                  at most this many stale members are removed per call

  Output:
    array of members (<kind>:<id>), by expiresAt ascending
]]
local dueKey = KEYS[1]
local now = ARGV[1]
local limit = tonumber(ARGV[2])
local before = ARGV[3]
local after = ARGV[4]
local maxStale = tonumber(ARGV[5])

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
    local state = redis.call('HGET', before .. member .. after, 'state')
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
