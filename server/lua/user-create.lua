--[[
  Create a user unless the email is taken, atomically.

  Mirrors MemoryUserStore.create: the email index is claimed with SET NX; only the winner writes
  the user hash (replacing any hash already stored under that id).

  Called only when the id shares the email's shard (both keys in one slot on Redis Cluster); see
  RedisUserStore.create for other ids.

  Input (keys from server/src/store/keys.ts):
    KEYS[1]   email index               keys.userByEmail(email)   -> user id
    KEYS[2]   user hash                 keys.user(id)

    ARGV[1]   user id
    ARGV[2..] field, value, field, value, ...   every stored field, already serialised by the caller

  Output:
     0  created
    -1  email_taken
]]
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  return -1
end

redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 0
