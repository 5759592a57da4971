--[[
  Non-final flows of one due shard whose expiresAt <= now, oldest first, at most `limit`, with
  their expiresAt (the caller merges the shards by it).

  The due set only ever holds non-final flows, but a member can outlive its hash (the hash hit its
  PEXPIREAT purge time before any sweeper expired it). Such stale members, and any member whose
  flow is (unexpectedly) final, are skipped and removed, so the result matches MemoryFlowStore,
  which never reports a forgotten flow.

  The flow hashes are only known here (from the members), so their key comes as a template from
  keys.ts (flowTemplate(shard)): ARGV[3] .. member .. ARGV[4]. The template carries the shard's
  hash tag, the same as the due set's, so on Redis Cluster every key read here is in KEYS[1]'s slot.

  FINAL (final states) is prepended by server/src/store/lua-scripts.ts from protocol's FINAL_STATES.

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   due sorted set            keys.dueSet(shard)   (score expiresAt, member keys.dueMember(kind, id))

    ARGV[1]   now                       epoch ms
    ARGV[2]   limit                     integer >= 1
    ARGV[3]   flow key, before member   keys.flowTemplate(shard).before
    ARGV[4]   flow key, after member    keys.flowTemplate(shard).after
    ARGV[5]   maxStale                  at most this many stale members are removed per call

  Output:
    flat array member, expiresAt, member, expiresAt, ... (members <kind>:<id>), by expiresAt ascending
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
while #out / 2 < limit do
  local want = math.min(limit - #out / 2, 500)
  local batch = redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'WITHSCORES', 'LIMIT', offset, want)
  if #batch == 0 then
    break
  end
  for i = 1, #batch, 2 do
    local member = batch[i]
    local state = redis.call('HGET', before .. member .. after, 'state')
    if state and not FINAL[state] then
      out[#out + 1] = member
      out[#out + 1] = batch[i + 1]
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
