--[[
  A user by email, in one round trip: the email index, then the user hash it points to.

  The user hash is only known here (from the id), so its key comes as a template from keys.ts
  (userTemplate): ARGV[1] .. id .. ARGV[2]. Fine on a single Redis, as flow-due.lua.

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   email index               keys.userByEmail(email)   -> user id

    ARGV[1]   user key, before id       keys.userTemplate().before
    ARGV[2]   user key, after id        keys.userTemplate().after

  Output: the user hash as HGETALL returns it (field, value, ...); empty when the email has no
  user (or its hash is gone).
]]
local id = redis.call('GET', KEYS[1])
if not id then
  return {}
end
return redis.call('HGETALL', ARGV[1] .. id .. ARGV[2])
