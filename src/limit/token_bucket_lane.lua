-- Token bucket, one tier, consume or check: `decide` (src/limit/engine.rs)
-- with the steps of src/limit/token_bucket.rs written out on plain locals,
-- so the commonest call makes no table but its reply. Anything else (more
-- tiers, another operation, a value that is not a well-formed one-tier
-- state) falls through to the general path, which also answers errors.
local lane_op = ARGV[1]
if ARGV[6] == '1' and (lane_op == '1' or lane_op == '2') then
  local blocked, tat = 0, 0
  local b, t
  if raw then
    -- Engine::load: 'tb1:<blocked>,<tat>', 1 to 16 digits each.
    b, t = string.match(raw, '^tb1:(%d+),(%d+)$')
    if b and #b <= 16 and #t <= 16 then
      blocked, tat = b + 0, t + 0
      if blocked >= 9007199254740992 or tat >= 9007199254740992 then
        b = nil
      end
    else
      b = nil
    end
  end
  if b or not raw then
    local size, interval = ARGV[7] + 0, ARGV[8] + 0
    if blocked <= now then
      blocked = 0
    end
    if tat < now then -- normalize
      tat = now
    end
    -- fits
    local cap = size * interval
    local retry = tat - now + amount * interval - cap
    if retry < 0 then
      retry = 0
    end
    local allowed, write = 0, false
    if blocked == 0 and retry == 0 then
      allowed = 1
      if lane_op == '1' then
        tat = tat + amount * interval -- charge
        write = true
      end
    elseif blocked == 0 and lane_op == '1' then
      local block_us = ARGV[4] + 0
      if block_us > 0 then
        blocked = now + block_us
        write = true
      end
    end
    -- report: the debt is also the reset time and the ttl
    local debt = tat - now
    local remaining = 0
    if debt < cap then
      remaining = math.floor((cap - debt) / interval) -- exact: see prelude.lua
    end
    if write then
      local ttl = debt
      if blocked - now > ttl then
        ttl = blocked - now
      end
      if ttl > 3153600000000000 then -- MAX_SPAN
        ttl = 3153600000000000
      end
      if ttl > 0 then
        redis.call('SET', KEYS[1], string.format('tb1:%d,%d', blocked, tat), 'PX', math.ceil(ttl / 1000))
      elseif raw then
        redis.call('DEL', KEYS[1])
      end
    end
    return { allowed, now, blocked, remaining, debt, retry }
  end
end
