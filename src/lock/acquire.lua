-- rampart lock acquire: the Lua twin of src/lock/acquire.rs.
-- KEYS[1] = the lock state "1|<fence>|<expires_at_us>|<holder hex or empty>"
-- ARGV = token (32 hex), ttl_us, state_ttl_ms (0 = keep forever), [now_us]
-- Reply: {1, fence, expires_at_us} acquired | {0, remaining_us} held
--        | {-1} corrupt state | {-2} time out of range
local now
if ARGV[4] then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local max = 9007199254740991
local fence = 0
local state = redis.call('GET', KEYS[1])
if state then
  local f, e, h = string.match(state, '^1|(%d+)|(%d+)|([0-9a-f]*)$')
  if not f or #f > 16 or #e > 16 or (#h ~= 0 and #h ~= 32) then return {-1} end
  fence, e = tonumber(f), tonumber(e)
  if fence > max or e > max then return {-1} end
  if #h > 0 and e > now then return {0, e - now} end
end
fence = math.max(fence + 1, now)
local expires = now + tonumber(ARGV[2])
if now > max or fence > max or expires > max then return {-2} end
local value = string.format('1|%.0f|%.0f|%s', fence, expires, ARGV[1])
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], value)
end
return {1, fence, expires}
