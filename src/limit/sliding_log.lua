-- Sliding window log: the twin of src/limit/sliding_log.rs (see its docs
-- for the stored form: 'sl1:' then 16-digit fields, a header of
-- blocked_until and base, then (ts, cum) records).
-- Per tier i: A[i] = limit, B[i] = window (us).
local TAG = 'sl1:'
local REBASE = 1125899906842624 -- 2^50

local longest = 0
for i = 1, n do
  if B[i] > longest then
    longest = B[i]
  end
end

-- A 16-digit field; a malformed one marks the value corrupt (the driver
-- then answers an error and writes nothing) and reads as 0.
local function field(str, pos)
  local f = string.sub(str, pos, pos + 15)
  local v = tonumber(f)
  if not v or v >= SAFE or not string.find(f, '^%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d$') then
    corrupt_seen = true
    return 0
  end
  return v
end

local function pad(v)
  return string.format('%016d', v)
end

-- The log is read in place, never copied until it is written:
-- s.raw holds the records from byte s.off on; s.n records are live; s.base
-- is the total before them; s.tail, when set, is the last record (a merged
-- or appended one), and s.raw then holds only the s.n - 1 before it.
local function fresh()
  return { raw = '', off = 1, n = 0, base = 0, tail = nil }
end

local function load(raw)
  local len = #raw
  if string.sub(raw, 1, 4) ~= TAG or len < 36 or (len - 36) % 32 ~= 0 then
    return nil
  end
  local blocked, base = field(raw, 5), field(raw, 21)
  return blocked, { raw = raw, off = 37, n = (len - 36) / 32, base = base, tail = nil }
end

local function ts(s, k)
  if s.tail and k == s.n then
    return s.tail[1]
  end
  return field(s.raw, s.off + (k - 1) * 32)
end

local function cum(s, k)
  if k == 0 then
    return s.base
  end
  if s.tail and k == s.n then
    return s.tail[2]
  end
  return field(s.raw, s.off + (k - 1) * 32 + 16)
end

-- The records as one string (copies the log: only when writing).
local function records(s)
  local kept = s.n
  if s.tail then
    kept = s.n - 1
  end
  local out = string.sub(s.raw, s.off, s.off + kept * 32 - 1)
  if s.tail then
    out = out .. pad(s.tail[1]) .. pad(s.tail[2])
  end
  return out
end

-- Replaces the log by (ts, total) pairs T[k], U[k] (rare paths only).
local function rebuild(s, T, U, m)
  local parts = {}
  for k = 1, m do
    parts[k] = pad(T[k]) .. pad(U[k])
  end
  s.raw, s.off, s.n, s.tail = table.concat(parts), 1, m, nil
end

-- The first record inside a window of w ending now (s.n + 1 if none).
local function first_in(s, w)
  local lo, hi = 1, s.n + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if ts(s, mid) + w <= now then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return lo
end

local function normalize(s)
  local j = first_in(s, longest)
  if j > 1 then
    s.base = cum(s, j - 1)
    s.off = s.off + (j - 1) * 32
    s.n = s.n - (j - 1)
  end
  if s.base >= REBASE then
    local T, U = {}, {}
    for k = 1, s.n do
      T[k] = ts(s, k)
      U[k] = cum(s, k) - s.base
    end
    s.base = 0
    rebuild(s, T, U, s.n)
  end
end

local function fits(s, i, cost)
  local j = first_in(s, B[i])
  local before = cum(s, j - 1)
  local count = cum(s, s.n) - before
  if count + cost <= A[i] then
    return 0
  end
  local target = before + (count + cost - A[i])
  local lo, hi = j, s.n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cum(s, mid) < target then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return ts(s, lo) + B[i] - now
end

local function add(s, amt)
  local last = cum(s, s.n)
  local c = last + amt
  if c > MAX_COUNT then
    c = MAX_COUNT
  end
  if s.n > 0 and (ts(s, s.n) >= now or c == last) then
    s.tail = { ts(s, s.n), c }
  elseif c > last then
    s.tail = { now, c }
    s.n = s.n + 1
  end
end

local function charge(s, cost)
  add(s, cost)
end

local function uncharge(s, amt)
  local T, K = {}, {}
  local prev = s.base
  for k = 1, s.n do
    T[k] = ts(s, k)
    local c = cum(s, k)
    K[k] = c - prev
    prev = c
  end
  local left = amt
  if undo_at > 0 then
    for k = 1, s.n do
      if T[k] == undo_at then
        local take = math.min(K[k], left)
        K[k] = K[k] - take
        left = left - take
        break
      end
    end
    -- A charge older than every window is out of the log: nothing of it
    -- to give back (the newest units are someone else's).
    if undo_at + longest <= now then
      left = 0
    end
  end
  for k = s.n, 1, -1 do
    if left == 0 then
      break
    end
    local take = math.min(K[k], left)
    K[k] = K[k] - take
    left = left - take
  end
  local T2, U, c, m = {}, {}, s.base, 0
  for k = 1, s.n do
    if K[k] > 0 then
      c = c + K[k]
      m = m + 1
      T2[m] = T[k]
      U[m] = c
    end
  end
  rebuild(s, T2, U, m)
end

local function penalize(s, amt)
  add(s, amt)
end

local function report(s, i)
  local count = cum(s, s.n) - cum(s, first_in(s, B[i]) - 1)
  local remaining = A[i] - count
  if remaining < 0 then
    remaining = 0
  end
  local reset = 0
  if s.n > 0 and ts(s, s.n) + B[i] > now then
    reset = ts(s, s.n) + B[i] - now
  end
  return remaining, reset
end

local function ttl_of(s)
  if s.n == 0 then
    return 0
  end
  local t = ts(s, s.n) + longest - now
  if t < 0 then
    return 0
  end
  return t
end

local function encode(s, blocked)
  return TAG .. pad(blocked) .. pad(s.base) .. records(s)
end
