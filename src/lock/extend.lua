-- rampart lock extend: the Lua twin of src/lock/extend.rs.
-- KEYS[1] = the lock state "1|<fence>|<expires_at_us>|<holder hex or empty>"
-- ARGV = token (32 hex), ttl_us, state_ttl_ms (0 = keep forever), [now_us]
-- Reply: {1, expires_at_us} extended | {0} not held (the state is untouched)
--        | {-1} corrupt state | {-2} time out of range
local now
if ARGV[4] then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local max = 9007199254740991
local state = redis.call('GET', KEYS[1])
if not state then return {0} end
local f, e, h = string.match(state, '^1|(%d+)|(%d+)|([0-9a-f]*)$')
if not f or #f > 16 or #e > 16 or (#h ~= 0 and #h ~= 32) then return {-1} end
local fence = tonumber(f)
e = tonumber(e)
if fence > max or e > max then return {-1} end
if h ~= ARGV[1] or e <= now then return {0} end
local expires = now + tonumber(ARGV[2])
if expires > max then return {-2} end
local value = string.format('1|%.0f|%.0f|%s', fence, expires, h)
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], value)
end
return {1, expires}
