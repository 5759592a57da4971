--[[
  Mark a queued login's job as taken off the queue, once, and count it.

  The queue position of a login is (its ticket - 1 - taken): the number of logins queued before it
  that no worker has taken yet. A job run twice (retry, stalled-job recovery) counts once.

  Input:
    KEYS[1]  flow hash        ${prefix}flow:login:${id}
    KEYS[2]  taken counter    ${prefix}login:taken

  Output: the taken counter after the call, or -1 when this job was already counted or the
          flow is gone (then nothing changed).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('HSETNX', KEYS[1], 'taken', '1') == 0 then
  return -1
end
return redis.call('INCR', KEYS[2])
