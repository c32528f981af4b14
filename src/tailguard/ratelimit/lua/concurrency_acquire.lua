-- KEYS[1]: the key's lease set. ARGV: now ("" = TIME), limit, lease seconds, token.
-- Returns {acquired 0/1, in flight, retry_after (text: the soonest a lease can expire)}.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.17g', now))
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], string.format('%.17g', now + lease), ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(lease * 1000)))
  return {1, count + 1, '0'}
end
local soonest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, count, string.format('%.17g', math.max(tonumber(soonest[2]) - now, 0))}
