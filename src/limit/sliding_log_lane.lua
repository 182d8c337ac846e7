-- Sliding window log, one tier, consume or check: `decide`
-- (src/limit/engine.rs) with the steps of src/limit/sliding_log.rs written
-- out for one window (it is then the longest, so pruning leaves only
-- records inside it). The log is read in place (a pattern of sixteen %d
-- is one 16-digit field) and never copied unless pruning shortens it.
-- Anything else (more tiers, another operation, a value whose
-- framing or a field read here is malformed, a base due for rebasing)
-- falls through to the general path, which also answers errors.
local lane_op = ARGV[1]
if ARGV[6] == '1' and (lane_op == '1' or lane_op == '2') then
  local limit, window = ARGV[7] + 0, ARGV[8] + 0
  local bad = false
  -- The 16-digit field at byte pos (below 2^53), or 0 and `bad`.
  local function field(pos)
    local f = string.match(raw, '^%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d', pos)
    if f then
      local v = f + 0
      if v < 9007199254740992 then
        return v
      end
    end
    bad = true
    return 0
  end
  -- Records k = 1..n start at byte off + (k - 1) * 32: ts, then cum.
  -- The header (and the first record's ts, when there is one) is read
  -- with one match.
  local stored_blocked, blocked, base, off, n, stored_n = 0, 0, 0, 37, 0, 0
  local first_ts
  if raw then
    local len = #raw
    if len < 36 or (len - 36) % 32 ~= 0 then
      bad = true
    else
      n = (len - 36) / 32
      stored_n = n
      local b, s, t
      if n > 0 then
        b, s, t = string.match(raw, '^sl1:(%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d)(%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d)(%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d)')
      else
        b, s = string.match(raw, '^sl1:(%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d)(%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d)')
        t = '0'
      end
      if b then
        stored_blocked, base, first_ts = b + 0, s + 0, t + 0
        if stored_blocked >= 9007199254740992 or base >= 9007199254740992 or first_ts >= 9007199254740992 then
          bad = true
        end
        blocked = stored_blocked
      else
        bad = true
      end
    end
  end
  if blocked <= now then
    blocked = 0
  end
  -- normalize: drop the records that have left the window (first_in: the
  -- first record inside it, found by binary search once the first record
  -- is out), moving their total into the base.
  if not bad and n > 0 and first_ts + window <= now then
    local lo, hi = 1, n + 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if field(off + (mid - 1) * 32) + window <= now then
        lo = mid + 1
      else
        hi = mid
      end
    end
    base = field(off + (lo - 2) * 32 + 16)
    off = off + (lo - 1) * 32
    n = n - (lo - 1)
  end
  -- (a base at 2^50 is rebased by the general path)
  if not bad and base < 1125899906842624 then
    local last_ts, last = 0, base
    if n > 0 then
      local t, c = string.match(raw, '^(%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d)(%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d)', off + (n - 1) * 32)
      if t then
        last_ts, last = t + 0, c + 0
        if last_ts >= 9007199254740992 or last >= 9007199254740992 then
          bad = true
        end
      else
        bad = true
      end
    end
    -- fits: the window holds last - base units; if the cost does not fit,
    -- wait for the first record whose total reaches the excess to leave.
    local retry = 0
    if last - base + amount > limit and n == 0 then
      bad = true -- (a cost above the limit: the general path's answer)
    elseif last - base + amount > limit then
      local target = last + amount - limit
      local lo, hi = 1, n
      while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if field(off + (mid - 1) * 32 + 16) < target then
          lo = mid + 1
        else
          hi = mid
        end
      end
      retry = field(off + (lo - 1) * 32) + window - now
    end
    if not bad then
      local allowed, write = 0, false
      local kept, tail = n, nil -- records copied as they are; the new last one
      if blocked == 0 and retry == 0 then
        allowed = 1
        if lane_op == '1' then
          -- charge (add): merge into the last record when it is not older
          -- than now or the total did not move, else append one.
          write = true
          local c = last + amount
          if c > 4503599627370496 then -- MAX_COUNT
            c = 4503599627370496
          end
          if n > 0 and (last_ts >= now or c == last) then
            kept, last = n - 1, c
          elseif c > last then
            last_ts, last = now, c
            n = n + 1
          end
          if kept < n then
            tail = string.format('%016d%016d', last_ts, last)
          end
        end
      elseif blocked == 0 and lane_op == '1' then
        local block_us = ARGV[4] + 0
        if block_us > 0 then
          blocked = now + block_us
          write = true
        end
      end
      -- report (and ttl: until the last record leaves the window)
      local remaining = limit - (last - base)
      if remaining < 0 then
        remaining = 0
      end
      local reset = 0
      if n > 0 and last_ts + window > now then
        reset = last_ts + window - now
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
          -- encode: 'sl1:' blocked base, the kept records, the new last
          -- one. On redis-server each long string built here costs more
          -- than a command, so the stored value is reused where it can
          -- be: with the header and the kept records unchanged (no
          -- pruning, no new block), a merged last record is overwritten
          -- in place (SETRANGE within the value, then PEXPIRE: the same
          -- bytes and TTL as a SET) and an appended one is one
          -- concatenation. (APPEND would be cheaper still, but Redis
          -- grows an appended string to twice its size.)
          local px = math.ceil(ttl / 1000)
          if raw and off == 37 and blocked == stored_blocked then
            if tail and kept == stored_n then
              redis.call('SET', KEYS[1], raw .. tail, 'PX', px)
            else
              if tail then
                redis.call('SETRANGE', KEYS[1], 36 + kept * 32, tail)
              end
              redis.call('PEXPIRE', KEYS[1], px)
            end
          else
            local kept_recs = ''
            if raw then
              kept_recs = string.sub(raw, off, off + kept * 32 - 1)
            end
            redis.call('SET', KEYS[1], string.format('sl1:%016d%016d', blocked, base) .. kept_recs .. (tail or ''),
              'PX', px)
          end
        elseif raw then
          redis.call('DEL', KEYS[1])
        end
      end
      return { allowed, now, blocked, remaining, reset, retry }
    end
  end
end
