-- rampart session record touch: the Lua twin of TouchRecord in record.rs.
-- KEYS[1] = a session record "1|<created>|<last_seen>|<expires>|<absolute>|<body>"
--           (times in microseconds since the epoch; the body is opaque here)
-- ARGV = idle_us, touch_us, now_us ('' = the server's TIME)
-- Reply: {0} missing or expired | {1, record} live, not renewed |
--        {2, record} renewed (record as now stored) | {-1} corrupt record
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local max = 9007199254740991
local v = redis.call('GET', KEYS[1])
if not v then return {0} end
local c, l, e, a, p = string.match(v, '^1|(%d+)|(%d+)|(%d+)|(%d+)|()')
if not c or #c > 16 or #l > 16 or #e > 16 or #a > 16 then return {-1} end
c, l, e, a = tonumber(c), tonumber(l), tonumber(e), tonumber(a)
if c > max or l > max or e > max or a > max then return {-1} end
if e <= now then return {0} end
if now < l + tonumber(ARGV[2]) then return {1, v} end
local ne = now + tonumber(ARGV[1])
if ne > a then ne = a end
if ne < e then ne = e end
if now > l then l = now end
local nv = string.format('1|%.0f|%.0f|%.0f|%.0f|', c, l, ne, a) .. string.sub(v, p)
redis.call('SET', KEYS[1], nv, 'PX', math.ceil((ne - now) / 1000))
return {2, nv}
