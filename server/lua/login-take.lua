--[[
  Mark a queued login's job as taken off the queue, once, and count it.

  The queue position of a login is (its ticket - 1 - taken): the number of logins queued before it
  that no worker has taken yet. A job run twice (retry, stalled-job recovery) counts once.

  The marker is a key of its own that lives exactly as long as the flow's hash: it takes the
  hash's remaining lifetime here, flow-transition.lua shortens both to the tombstone time on a
  final state, and flow-create.lua deletes it when it replaces the record.

  The count is kept per flow shard (the sum over the shards is the total), so the counter shares
  the flow's slot and marker and count change together, also on Redis Cluster.

  Input (keys from server/src/store/keys.ts; all three carry the flow's shard tag: one slot):
    KEYS[1]  flow hash        keys.flow('login', id)
    KEYS[2]  taken marker     keys.flowTaken('login', id)
    KEYS[3]  taken counter    keys.loginTakenCountOf(id)   (this shard's)

  Output: the shard's taken counter after the call, or -1 when this job was already counted or
          the flow is gone (then nothing changed).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
-- A flow taken before the marker had its own key carries a `taken` field instead; remove this
-- check once every flow from before that release is gone (LOGIN_TTL + tombstone).
if redis.call('HEXISTS', KEYS[1], 'taken') == 1 then
  return -1
end
-- The marker ends when the hash does, to the millisecond: PEXPIRETIME (Redis 7+) gives the hash's
-- absolute expiry. A PTTL copied into PX is read and applied at two clock readings, so the marker
-- could outlive the hash by a millisecond; that is the fallback only before Redis 7.
local set
local hasAt, at = pcall(redis.call, 'PEXPIRETIME', KEYS[1])
if hasAt and at > 0 then
  set = redis.call('SET', KEYS[2], '1', 'NX', 'PXAT', at)
else
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    set = redis.call('SET', KEYS[2], '1', 'NX', 'PX', ttl)
  else
    set = redis.call('SET', KEYS[2], '1', 'NX')
  end
end
if not set then
  return -1
end
return redis.call('INCR', KEYS[3])
