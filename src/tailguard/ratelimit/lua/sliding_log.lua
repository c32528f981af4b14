-- A sorted set of admitted requests scored by time; members are unique ("time-position").
for i = 1, n do
  local limit, period = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%.17g', now - period + EPS))
  local count = redis.call('ZCARD', KEYS[i])
  local o = #out
  if count + cost <= limit then
    -- full quota back when this request leaves the log
    out[o + 1], out[o + 2], out[o + 3], out[o + 4] = 1, limit - count - cost, us(period), 0
    writes[i] = count
  else
    all = false
    local reset = 0
    if count > 0 then
      local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
      reset = us(tonumber(newest[2]) + period - now)
    end
    local at = redis.call('ZRANGE', KEYS[i], count + cost - limit - 1, count + cost - limit - 1, 'WITHSCORES')
    out[o + 1], out[o + 2], out[o + 3], out[o + 4] = 0, math.max(0, limit - count), reset, us(math.max(tonumber(at[2]) + period - now, 0))
  end
end
if all then
  local stamp = string.format('%.17g', now)
  for i = 1, n do
    local args = {}
    for j = 1, cost do
      args[#args + 1] = stamp
      args[#args + 1] = stamp .. '-' .. (writes[i] + j)
    end
    redis.call('ZADD', KEYS[i], unpack(args))
    redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(tonumber(ARGV[3 * i + 1]) * 1000)))
  end
end
return out
