for i = 1, n do
  local limit, period = limit_args(i)
  local window = math.floor(now / period)
  local current, previous = 0, 0
  local stored = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local sw = tonumber(stored[1])
  if sw == window then
    current, previous = tonumber(stored[2]), tonumber(stored[3])
  elseif sw == window - 1 then
    previous = tonumber(stored[2])
  end
  local elapsed = now - window * period
  local estimate = previous * (1.0 - elapsed / period) + current
  if estimate + cost <= limit + EPS then
    emit(true, math.max(0, math.floor(limit - estimate - cost + EPS)), period - elapsed, 0)
    writes[i] = {window, current + cost, previous, 2 * period - elapsed}
  else
    local retry
    if cost > limit then
      retry = 2 * period - elapsed
    elseif current + cost <= limit then
      retry = period * (1.0 - (limit - current - cost) / previous) - elapsed
    else
      retry = (period - elapsed) + period * (1.0 - (limit - cost) / current)
    end
    emit(false, math.max(0, math.floor(limit - estimate + EPS)), period - elapsed, math.max(retry, 0))
  end
end
if all then
  for i = 1, n do
    local w = writes[i]
    redis.call('HSET', KEYS[i], 'w', w[1], 'c', w[2], 'p', w[3])
    redis.call('PEXPIRE', KEYS[i], px(w[4]))
  end
end
return out
