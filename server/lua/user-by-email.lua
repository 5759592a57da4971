--[[
  A user by email, in one round trip: the email index, then the user hash it points to.

  The user hash is only known here (from the id), so its key comes as a template from keys.ts
  (userTemplate(email)): ARGV[1] .. id .. ARGV[2]. The template carries the email's shard tag, so
  the key read is in KEYS[1]'s slot (Redis Cluster); it is the user's hash when the id shares the
  email's shard, as every id Handoff mints does. For any other id the caller reads the hash itself.

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   email index               keys.userByEmail(email)   -> user id

    ARGV[1]   user key, before id       keys.userTemplate(email).before
    ARGV[2]   user key, after id        keys.userTemplate(email).after

  Output:
    {}                            the email has no user
    { id }                        the index holds id, but no hash is at the template's key (an id
                                  of another shard, or its hash is gone): the caller reads keys.user(id)
    { field, value, ... }         the user hash as HGETALL returns it
]]
local id = redis.call('GET', KEYS[1])
if not id then
  return {}
end
local user = redis.call('HGETALL', ARGV[1] .. id .. ARGV[2])
if #user == 0 then
  return { id }
end
return user
