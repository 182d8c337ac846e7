-- rampart take: the Lua twin of TakeRecord in record.rs (GETDEL for Redis 6.0).
-- KEYS[1] = any value. Reply: the value it held (now deleted), or nil.
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
