-- Shared prologue (prepended to every script). KEYS: one state key per limit.
-- ARGV: now ("" = the server's TIME), cost, then limit, period, capacity for each key.
-- Returns, per limit: allowed (0/1), remaining, reset_after, retry_after (numbers as text:
-- Redis would truncate Lua floats to integers). State is written only if all limits allow.
local EPS = 1e-9
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local cost = tonumber(ARGV[2])
local n = #KEYS
local out = {}
local writes = {}
local all = true
local function num(x) return string.format('%.17g', x) end
local function limit_args(i)
  return tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
end
local function emit(allowed, remaining, reset, retry)
  if not allowed then all = false end
  out[#out + 1] = allowed and 1 or 0
  out[#out + 1] = remaining
  out[#out + 1] = num(reset)
  out[#out + 1] = num(retry)
end
local function px(seconds) return math.max(1, math.ceil(seconds * 1000)) end
