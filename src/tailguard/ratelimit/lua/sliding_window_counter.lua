for i = 1, n do
  local limit, period = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local window = math.floor(now / period)
  local current, previous = 0, 0
  local stored = redis.call('GET', KEYS[i])  -- "window current previous": one short string
  if stored then
    local w, c, p = string.match(stored, '(%S+) (%S+) (%S+)')
    local sw = tonumber(w)
    if sw == window then
      current, previous = tonumber(c), tonumber(p)
    elseif sw == window - 1 then
      previous = tonumber(c)
    end
  end
  local elapsed = now - window * period
  local estimate = previous * (1.0 - elapsed / period) + current
  local o = #out
  if estimate + cost <= limit + EPS then
    out[o + 1] = 1
    out[o + 2] = math.max(0, math.floor(limit - estimate - cost + EPS))
    out[o + 3] = us(2 * period - elapsed)
    out[o + 4] = 0
    writes[i] = {window, current + cost, previous, 2 * period - elapsed}
  else
    all = false
    local retry
    if current + cost <= limit then
      retry = period * (1.0 - (limit - current - cost) / previous) - elapsed
    else
      retry = (period - elapsed) + period * (1.0 - (limit - cost) / current)
    end
    local full = period
    if current > 0 then full = 2 * period end
    out[o + 1] = 0
    out[o + 2] = math.max(0, math.floor(limit - estimate + EPS))
    out[o + 3] = us(full - elapsed)
    out[o + 4] = us(math.max(retry, 0))
  end
end
if all then
  for i = 1, n do
    local w = writes[i]
    redis.call('SET', KEYS[i], string.format('%d %d %d', w[1], w[2], w[3]), 'PX', math.max(1, math.ceil(w[4] * 1000)))
  end
end
return out
