-- Shared prologue. KEYS: one state key per limit. ARGV: now ("" = the server's TIME), cost,
-- then limit, period, capacity for each key. Returns, per limit: allowed (0/1), remaining,
-- reset_after and retry_after in whole microseconds (integers: Redis would truncate floats).
-- State is written only if every limit allows.
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
-- Seconds as whole microseconds more than 1 us past them (as Python's _after): waiting that
-- long always crosses the boundary, whatever the float error at epoch times.
local function us(x) return math.floor(x * 1e6) + 2 end
