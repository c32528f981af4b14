-- State: the theoretical arrival time, in whole microseconds (an integer for Redis).
-- Hot path: no helper calls, one SET per key; results as in Python's _after().
local floor = math.floor
for i = 1, n do
  local a = 3 * i
  local interval = tonumber(ARGV[a + 1]) / tonumber(ARGV[a])
  local window = tonumber(ARGV[a + 2]) * interval
  local tat = now
  local stored = tonumber(redis.call('GET', KEYS[i]))
  if stored and stored / 1e6 > now then tat = stored / 1e6 end
  local new_tat = tat + interval * cost
  local ahead = new_tat - now
  local o = 4 * i - 4
  if ahead <= window + EPS then
    local left = floor((window - ahead) / interval + EPS)
    if left < 0 then left = 0 end
    out[o + 1], out[o + 2], out[o + 3], out[o + 4] = 1, left, floor(ahead * 1e6) + 2, 0
    writes[i] = floor(new_tat * 1e6 + 0.5)
  else
    all = false
    local left = floor((window - (tat - now)) / interval + EPS)
    if left < 0 then left = 0 end
    out[o + 1], out[o + 2] = 0, left
    out[o + 3], out[o + 4] = floor((tat - now) * 1e6) + 2, floor((new_tat - window - now) * 1e6) + 2
  end
end
if all then
  local ms = now * 1000
  for i = 1, n do
    local w = writes[i]
    local px = math.ceil(w / 1000 - ms)
    if px < 1 then px = 1 end
    redis.call('SET', KEYS[i], string.format('%d', w), 'PX', px)
  end
end
return out
