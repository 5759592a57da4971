--[[
  Create a flow only if its owner's group holds fewer than `max` live flows, atomically
  (push-to-approve: APPROVALS_PER_USER pending approvals per user).

  The group is a sorted set of the owner's flow ids scored by expiresAt. Before counting, it is
  cleaned: members past expiresAt, members whose hash is gone, and members whose flow reached a
  final state are removed. So it never needs a hook in flow-transition.lua, and it holds at most
  `max` live ids plus what ended since the last create. Then, when there is room, the flow is
  created exactly as flow-create.lua does, and its id added to the group; the group key expires
  with its latest member's purge time.

  Mirrors MemoryFlowStore.createCapped. The flow hashes of members are only known here, so their
  key comes as a template from keys.ts (flowOfKindTemplate): ARGV[7] .. id .. ARGV[8].
  Redis Cluster: the group key carries the shard tag of its group, and every flow of the group is
  minted into that shard (keys.ts mintFlowIdInShard), so the group, its hashes and the due set share one slot.

  FINAL (final states) is prepended by server/src/store/lua-scripts.ts from protocol's FINAL_STATES.

  Input:
    KEYS[1]   flow hash                 keys.flow(kind, id)
    KEYS[2]   due sorted set            keys.dueSetOf(id)
    KEYS[3]   taken marker              keys.flowTaken(kind, id)
    KEYS[4]   group sorted set          keys.flowGroup(group)   (score expiresAt, member id)

    ARGV[1]   due-set member            keys.dueMember(kind, id)
    ARGV[2]   expiresAt                 epoch ms
    ARGV[3]   purgeAt                   epoch ms, integer: expiresAt + tombstoneMs
    ARGV[4]   max                       live flows allowed in the group (>= 1)
    ARGV[5]   now                       epoch ms
    ARGV[6]   id                        the new flow's id (its member in the group)
    ARGV[7]   flow key, before id       keys.flowOfKindTemplate(kind).before
    ARGV[8]   flow key, after id        keys.flowOfKindTemplate(kind).after
    ARGV[9..] field, value, ...         every stored field, already serialised by the caller

  Output:
     0  created
     1  the group is full: nothing written (besides the cleaning)
]]
local flowKey = KEYS[1]
local dueKey = KEYS[2]
local groupKey = KEYS[4]
local max = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local before = ARGV[7]
local after = ARGV[8]

redis.call('ZREMRANGEBYSCORE', groupKey, '-inf', now)
local live = 0
for _, member in ipairs(redis.call('ZRANGE', groupKey, 0, -1)) do
  local state = redis.call('HGET', before .. member .. after, 'state')
  if (not state) or FINAL[state] then
    redis.call('ZREM', groupKey, member)
  else
    live = live + 1
  end
end
if live >= max then
  return 1
end

redis.call('DEL', flowKey, KEYS[3])
redis.call('HSET', flowKey, unpack(ARGV, 9))
redis.call('PEXPIREAT', flowKey, ARGV[3])
if redis.call('EXISTS', flowKey) == 1 then
  redis.call('ZADD', dueKey, ARGV[2], ARGV[1])
  redis.call('ZADD', groupKey, ARGV[2], ARGV[6])
  local current = redis.call('PTTL', groupKey)
  local purgeAt = tonumber(ARGV[3])
  -- Keep the group as long as its latest member may still be read.
  if current < 0 or now + current < purgeAt then
    redis.call('PEXPIREAT', groupKey, ARGV[3])
  end
end
return 0
