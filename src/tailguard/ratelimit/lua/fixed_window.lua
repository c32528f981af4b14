for i = 1, n do
  local limit, period = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local window = math.floor(now / period)
  local count = 0
  local stored = redis.call('HMGET', KEYS[i], 'w', 'c')
  if tonumber(stored[1]) == window then count = tonumber(stored[2]) end
  local ends = (window + 1) * period - now
  local o = #out
  out[o + 3] = math.floor(ends * 1e6 + 0.5)
  if count + cost <= limit then
    out[o + 1], out[o + 2], out[o + 4] = 1, limit - count - cost, 0
    writes[i] = {window, count + cost, ends}
  else
    all = false
    out[o + 1], out[o + 2], out[o + 4] = 0, math.max(0, limit - count), out[o + 3]
  end
end
if all then
  for i = 1, n do
    local w = writes[i]
    redis.call('HSET', KEYS[i], 'w', w[1], 'c', w[2])
    redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(w[3] * 1000)))
  end
end
return out
