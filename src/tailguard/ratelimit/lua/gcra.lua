-- State: the theoretical arrival time, in whole microseconds (an integer for Redis).
for i = 1, n do
  local limit, period, cap = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local interval = period / limit
  local window = cap * interval
  local stored = tonumber(redis.call('GET', KEYS[i]))
  local tat = now
  if stored and stored / 1e6 > now then tat = stored / 1e6 end
  local new_tat = tat + interval * cost
  local ahead = new_tat - now
  local allow_at = new_tat - window
  local o = #out
  if ahead <= window + EPS then
    out[o + 1] = 1
    out[o + 2] = math.max(0, math.floor((window - ahead) / interval + EPS))
    out[o + 3] = us(ahead)
    out[o + 4] = 0
    writes[i] = math.floor(new_tat * 1e6 + 0.5)
  else
    all = false
    out[o + 1] = 0
    out[o + 2] = math.max(0, math.floor((window - (tat - now)) / interval + EPS))
    out[o + 3] = us(tat - now)
    out[o + 4] = us(allow_at - now)
  end
end
if all then
  for i = 1, n do
    redis.call('SET', KEYS[i], string.format('%d', writes[i]), 'PX', math.max(1, math.ceil(writes[i] / 1000 - now * 1000)))
  end
end
return out
