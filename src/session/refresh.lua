-- rampart refresh-token family: the Lua twin of FamilyOp in refresh.rs.
-- KEYS[1] = a family "1|<gen>|<created>|<expires>|<absolute>|<a|r>|<token hash>|<body>"
--           (times in microseconds since the epoch; the token hash is 64
--           lowercase hex digits; the body is opaque here)
-- ARGV = action (rotate | revoke), now_us ('' = the server's TIME),
--        presented token hash, next token hash, idle_us
-- Reply: {0} missing or expired | {code, gen, expires, body} with code
--        1 rotated | 2 reuse detected, family revoked now |
--        3 already revoked | 4 revoked now (revoke) |
--        {-1} corrupt family | {-2} unknown action
local action = ARGV[1]
if action ~= 'rotate' and action ~= 'revoke' then return {-2} end
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local max = 9007199254740991
local v = redis.call('GET', KEYS[1])
if not v then return {0} end
local g, c, e, a, st, h, p =
  string.match(v, '^1|(%d+)|(%d+)|(%d+)|(%d+)|([ar])|([0-9a-f]+)|()')
if not g or #g > 16 or #c > 16 or #e > 16 or #a > 16 or #h ~= 64 then return {-1} end
g, c, e, a = tonumber(g), tonumber(c), tonumber(e), tonumber(a)
if g > max or c > max or e > max or a > max then return {-1} end
if e <= now then return {0} end
local body = string.sub(v, p)
if st == 'r' then return {3, g, e, body} end
-- Constant time for a given length: every byte is compared.
local function same(x, y)
  if #x ~= #y then return false end
  local d = 0
  for i = 1, #x do
    d = bit.bor(d, bit.bxor(string.byte(x, i), string.byte(y, i)))
  end
  return d == 0
end
if action == 'rotate' and same(h, ARGV[3]) then
  local ne = now + tonumber(ARGV[5])
  if ne > a then ne = a end
  if ne < e then ne = e end
  if g < max then g = g + 1 end
  local nv = string.format('1|%.0f|%.0f|%.0f|%.0f|a|', g, c, ne, a) .. ARGV[4] .. '|' .. body
  redis.call('SET', KEYS[1], nv, 'PX', math.ceil((ne - now) / 1000))
  return {1, g, ne, body}
end
local nv = string.format('1|%.0f|%.0f|%.0f|%.0f|r|', g, c, e, a) .. h .. '|' .. body
redis.call('SET', KEYS[1], nv, 'KEEPTTL')
if action == 'rotate' then return {2, g, e, body} end
return {4, g, e, body}
