for i = 1, n do
  local limit, period, cap = limit_args(i)
  local interval = period / limit
  local window = cap * interval
  local stored = tonumber(redis.call('GET', KEYS[i]))
  local tat = now
  if stored and stored > now then tat = stored end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - window
  if now + EPS >= allow_at then
    emit(true, math.max(0, math.floor((window - (new_tat - now)) / interval + EPS)), new_tat - now, 0)
    writes[i] = new_tat
  else
    emit(false, math.max(0, math.floor((window - (tat - now)) / interval + EPS)), tat - now, allow_at - now)
  end
end
if all then
  for i = 1, n do
    redis.call('SET', KEYS[i], num(writes[i]), 'PX', px(writes[i] - now))
  end
end
return out
