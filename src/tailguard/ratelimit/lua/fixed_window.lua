for i = 1, n do
  local limit, period = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local window = math.floor(now / period)
  local count = 0
  local stored = redis.call('GET', KEYS[i])  -- "window count": one short string, few bytes
  if stored then
    local w, c = string.match(stored, '(%S+) (%S+)')
    if tonumber(w) == window then count = tonumber(c) end
  end
  local ends = (window + 1) * period - now
  local o = #out
  out[o + 3] = us(ends)
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
    redis.call('SET', KEYS[i], string.format('%d %d', w[1], w[2]), 'PX', math.max(1, math.ceil(w[3] * 1000)))
  end
end
return out
