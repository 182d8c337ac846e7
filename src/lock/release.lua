-- rampart lock release: the Lua twin of src/lock/release.rs.
-- KEYS[1] = the lock state "1|<fence>|<expires_at_us>|<holder hex or empty>"
-- ARGV = token (32 hex), state_ttl_ms (0 = keep forever), [now_us]
-- Reply: 1 released | 0 not held (the state is untouched) | -1 corrupt state
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local max = 9007199254740991
local state = redis.call('GET', KEYS[1])
if not state then return 0 end
local f, e, h = string.match(state, '^1|(%d+)|(%d+)|([0-9a-f]*)$')
if not f or #f > 16 or #e > 16 or (#h ~= 0 and #h ~= 32) then return -1 end
local fence = tonumber(f)
e = tonumber(e)
if fence > max or e > max then return -1 end
if h ~= ARGV[1] or e <= now then return 0 end
local value = string.format('1|%.0f|0|', fence)
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], value)
end
return 1
