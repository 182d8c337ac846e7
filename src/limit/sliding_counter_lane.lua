-- Sliding window counter, one tier, consume or check: `decide`
-- (src/limit/engine.rs) with the steps of src/limit/sliding_counter.rs
-- written out on plain locals, so the commonest call makes no table but
-- its reply. Anything else (more tiers, another operation, a value that is
-- not a well-formed one-tier state) falls through to the general path,
-- which also answers errors.
local lane_op = ARGV[1]
if ARGV[6] == '1' and (lane_op == '1' or lane_op == '2') then
  local blocked, start, prev, cur = 0, 0, 0, 0
  local b, s, p, c
  local limit = ARGV[7] + 0
  if raw then
    -- Engine::load: 'sc1:<blocked>,<start>,<prev>,<cur>', 1 to 16 digits
    -- each; the counts are capped at two windows' worth.
    b, s, p, c = string.match(raw, '^sc1:(%d+),(%d+),(%d+),(%d+)$')
    if b and #b <= 16 and #s <= 16 and #p <= 16 and #c <= 16 then
      blocked, start, prev, cur = b + 0, s + 0, p + 0, c + 0
      if blocked >= 9007199254740992 or start >= 9007199254740992
        or prev >= 9007199254740992 or cur >= 9007199254740992 then
        b = nil
      end
      if prev > 2 * limit then
        prev = 2 * limit
      end
      if cur > 2 * limit then
        cur = 2 * limit
      end
    else
      b = nil
    end
  end
  if b or not raw then
    local window, step = ARGV[8] + 0, ARGV[9] + 0
    local w = math.floor(window / step) -- steps per window (exact: see prelude.lua)
    if blocked <= now then
      blocked = 0
    end
    -- normalize: roll to the window `now` is in.
    local aligned = math.floor(now / window) * window
    if start < aligned then
      if aligned - start == window then
        prev = cur
      else
        prev = 0
      end
      cur = 0
      start = aligned
    end
    -- weighted: the part of the previous window still inside the sliding one.
    local elapsed = 0
    if now > start then
      elapsed = math.floor((now - start) / step)
    end
    local weighted = math.floor(prev * (w - elapsed) / w)
    -- fits (wait_steps written out: the first step at which `p * (w - e) / w`
    -- drops to `room`)
    local retry = 0
    if weighted + cur + amount > limit then
      local pp, room, base = prev, limit - cur - amount, start
      if cur + amount > limit then
        pp, room, base = cur, limit - amount, start + window
      end
      local wait = 0
      if pp > 0 then
        local m = math.floor(((room + 1) * w - 1) / pp)
        if m < w then
          wait = w - m
        end
      end
      retry = base + wait * step - now
    end
    local allowed, write = 0, false
    if blocked == 0 and retry == 0 then
      allowed = 1
      if lane_op == '1' then
        cur = cur + amount -- charge
        write = true
      end
    elseif blocked == 0 and lane_op == '1' then
      local block_us = ARGV[4] + 0
      if block_us > 0 then
        blocked = now + block_us
        write = true
      end
    end
    -- report
    local remaining = limit - weighted - cur
    if remaining < 0 then
      remaining = 0
    end
    local pp, base = prev, start
    if cur > 0 then
      pp, base = cur, start + window
    end
    local wait = 0
    if pp > 0 then
      local m = math.floor((w - 1) / pp)
      if m < w then
        wait = w - m
      end
    end
    local reset = base + wait * step - now
    if reset < 0 then
      reset = 0
    end
    if write then
      -- ttl: until both windows have slid out, while either counts anything
      local ttl = 0
      if prev > 0 or cur > 0 then
        ttl = start + 2 * window - now
      end
      if blocked - now > ttl then
        ttl = blocked - now
      end
      if ttl > 3153600000000000 then -- MAX_SPAN
        ttl = 3153600000000000
      end
      if ttl > 0 then
        redis.call('SET', KEYS[1], string.format('sc1:%d,%d,%d,%d', blocked, start, prev, cur),
          'PX', math.ceil(ttl / 1000))
      elseif raw then
        redis.call('DEL', KEYS[1])
      end
    end
    return { allowed, now, blocked, remaining, reset, retry }
  end
end
