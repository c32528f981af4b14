for i = 1, n do
  local limit, period = limit_args(i)
  local window = math.floor(now / period)
  local count = 0
  local stored = redis.call('HMGET', KEYS[i], 'w', 'c')
  if tonumber(stored[1]) == window then count = tonumber(stored[2]) end
  local ends = (window + 1) * period - now
  if count + cost <= limit then
    emit(true, limit - count - cost, ends, 0)
    writes[i] = {window, count + cost, ends}
  else
    emit(false, math.max(0, limit - count), ends, ends)
  end
end
if all then
  for i = 1, n do
    local w = writes[i]
    redis.call('HSET', KEYS[i], 'w', w[1], 'c', w[2])
    redis.call('PEXPIRE', KEYS[i], px(w[3]))
  end
end
return out
