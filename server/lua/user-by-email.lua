--[[
  A user by email, in one round trip: the email index, then the user hash it points to.

  Input:
    KEYS[1]   email index               ${prefix}user-email:${email}   -> user id
    ARGV[1]   user hash key prefix      ${prefix}user:

  Output: the user hash as HGETALL returns it (field, value, ...); empty when the email has no
  user (or its hash is gone).

  The user hash key is built here from the id, so it is not declared in KEYS: Handoff runs on one
  Redis (not Redis Cluster), as flow-due.lua does too.
]]
local id = redis.call('GET', KEYS[1])
if not id then
  return {}
end
return redis.call('HGETALL', ARGV[1] .. id)
