-- Fixed window, one tier, consume or check: `decide` (src/limit/engine.rs)
-- with the steps of src/limit/fixed_window.rs written out on plain locals,
-- so the commonest call makes no table but its reply. Anything else (more
-- tiers, another operation, a value that is not a well-formed one-tier
-- state) falls through to the general path, which also answers errors.
local lane_op = ARGV[1]
if ARGV[6] == '1' and (lane_op == '1' or lane_op == '2') then
  local blocked, start, count = 0, 0, 0
  local b, s, c
  if raw then
    -- Engine::load: 'fw1:<blocked>,<start>,<count>', 1 to 16 digits each.
    b, s, c = string.match(raw, '^fw1:(%d+),(%d+),(%d+)$')
    if b and #b <= 16 and #s <= 16 and #c <= 16 then
      blocked, start, count = b + 0, s + 0, c + 0
      if blocked >= 9007199254740992 or start >= 9007199254740992 or count >= 9007199254740992 then
        b = nil
      end
    else
      b = nil
    end
  end
  if b or not raw then
    local limit, window = ARGV[7] + 0, ARGV[8] + 0
    if blocked <= now then
      blocked = 0
    end
    -- normalize: the window `now` is in, aligned to the epoch (the floor
    -- is exact: see prelude.lua).
    local aligned = math.floor(now / window) * window
    if start < aligned then
      start, count = aligned, 0
    end
    -- fits
    local retry = 0
    if count + amount > limit then
      retry = start + window - now
    end
    local allowed, write = 0, false
    if blocked == 0 and retry == 0 then
      allowed = 1
      if lane_op == '1' then
        count = count + amount -- charge
        write = true
      end
    elseif blocked == 0 and lane_op == '1' then
      local block_us = ARGV[4] + 0
      if block_us > 0 then
        blocked = now + block_us
        write = true
      end
    end
    -- report (and ttl: the window's end while it counts anything)
    local remaining, reset = limit - count, 0
    if remaining < 0 then
      remaining = 0
    end
    if count > 0 then
      reset = start + window - now
    end
    if write then
      local ttl = reset
      if blocked - now > ttl then
        ttl = blocked - now
      end
      if ttl > 3153600000000000 then -- MAX_SPAN
        ttl = 3153600000000000
      end
      if ttl > 0 then
        redis.call('SET', KEYS[1], string.format('fw1:%d,%d,%d', blocked, start, count), 'PX', math.ceil(ttl / 1000))
      elseif raw then
        redis.call('DEL', KEYS[1])
      end
    end
    return { allowed, now, blocked, remaining, reset, retry }
  end
end
