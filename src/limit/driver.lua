-- rampart rate limiting: the decision flow shared by every algorithm
-- (the twin of `decide` in src/limit/engine.rs).
-- (prelude.lua has checked the clock and read the value into `raw`.)
local blocked, s = 0, nil
if raw then
  blocked, s = load(raw)
  if blocked == nil then
    return redis.error_reply('RAMPART_CORRUPT_DATA stored rate-limit state is not in the expected format')
  end
end
if not s then
  s = fresh()
end
if blocked <= now then
  blocked = 0
end
normalize(s)
local allowed = 0
local write = false
local retry = {}
if op == 1 or op == 2 then
  local all = true
  for i = 1, n do
    retry[i] = fits(s, i, amount)
    if retry[i] > 0 then
      all = false
    end
  end
  if blocked == 0 and all then
    allowed = 1
    if op == 1 then
      charge(s, amount)
      write = true
    end
  elseif blocked == 0 and op == 1 and block_us > 0 then
    blocked = now + block_us
    write = true
  end
else
  if op == 3 then
    uncharge(s, amount)
  elseif op == 4 then
    penalize(s, amount)
  elseif now + amount > blocked then
    blocked = now + amount
  end
  write = true
  local all = true
  for i = 1, n do
    retry[i] = fits(s, i, 1)
    if retry[i] > 0 then
      all = false
    end
  end
  if blocked == 0 and all then
    allowed = 1
  end
end
if corrupt_seen then
  return redis.error_reply('RAMPART_CORRUPT_DATA stored rate-limit state is not in the expected format')
end
local reply = { allowed, now, blocked }
for i = 1, n do
  local remaining, reset_after = report(s, i)
  reply[#reply + 1] = remaining
  reply[#reply + 1] = reset_after
  reply[#reply + 1] = retry[i]
end
if write then
  local ttl = ttl_of(s)
  if blocked - now > ttl then
    ttl = blocked - now
  end
  if ttl > MAX_SPAN then
    ttl = MAX_SPAN
  end
  if ttl > 0 then
    redis.call('SET', KEYS[1], encode(s, blocked), 'PX', math.ceil(ttl / 1000))
  elseif raw then
    redis.call('DEL', KEYS[1])
  end
end
return reply
