-- A sorted set of admitted requests scored by time; members are unique ("time-position").
for i = 1, n do
  local limit, period = limit_args(i)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', num(now - period + EPS))
  local count = redis.call('ZCARD', KEYS[i])
  local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  local first = now
  if oldest[2] then first = tonumber(oldest[2]) end
  local reset = first + period - now
  if count + cost <= limit then
    emit(true, limit - count - cost, reset, 0)
    writes[i] = count
  elseif cost > limit then
    local r = 0
    if count > 0 then r = reset end
    emit(false, math.max(0, limit - count), r, period)
  else
    local at = redis.call('ZRANGE', KEYS[i], count + cost - limit - 1, count + cost - limit - 1, 'WITHSCORES')
    local r = 0
    if count > 0 then r = reset end
    emit(false, math.max(0, limit - count), r, math.max(tonumber(at[2]) + period - now, 0))
  end
end
if all then
  local stamp = num(now)
  for i = 1, n do
    local limit, period = limit_args(i)
    local args = {}
    for j = 1, cost do
      args[#args + 1] = stamp
      args[#args + 1] = stamp .. '-' .. (writes[i] + j)
    end
    redis.call('ZADD', KEYS[i], unpack(args))
    redis.call('PEXPIRE', KEYS[i], px(period))
  end
end
return out
