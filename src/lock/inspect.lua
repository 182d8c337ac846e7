-- rampart lock inspect: the Lua twin of src/lock/inspect.rs (read only).
-- KEYS[1] = the lock state "1|<fence>|<expires_at_us>|<holder hex or empty>"
-- ARGV = [now_us]
-- Reply: {1, fence, remaining_us} held | {0, fence} free (fence 0 = never
--        locked) | {-1} corrupt state
local now
if ARGV[1] then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local max = 9007199254740991
local state = redis.call('GET', KEYS[1])
if not state then return {0, 0} end
local f, e, h = string.match(state, '^1|(%d+)|(%d+)|([0-9a-f]*)$')
if not f or #f > 16 or #e > 16 or (#h ~= 0 and #h ~= 32) then return {-1} end
local fence = tonumber(f)
e = tonumber(e)
if fence > max or e > max then return {-1} end
if #h > 0 and e > now then return {1, fence, e - now} end
return {0, fence}
