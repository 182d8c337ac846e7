-- Sliding window counter: the twin of src/limit/sliding_counter.rs.
-- Per tier i: A[i] = limit, B[i] = window (us), C[i] = step (us);
-- state: start[i], prev[i], cur[i].
local TAG = 'sc1'

local function fresh()
  local s = { start = {}, prev = {}, cur = {} }
  for i = 1, n do
    s.start[i] = 0
    s.prev[i] = 0
    s.cur[i] = 0
  end
  return s
end

local function load(raw)
  local f = parse_fields(raw, TAG)
  if not f then
    return nil
  end
  if #f ~= 1 + 3 * n then
    return f[1], nil
  end
  local s = { start = {}, prev = {}, cur = {} }
  for i = 1, n do
    s.start[i] = f[3 * i - 1]
    s.prev[i] = math.min(f[3 * i], 2 * A[i])
    s.cur[i] = math.min(f[3 * i + 1], 2 * A[i])
  end
  return f[1], s
end

local function wait_steps(p, room, w)
  if p == 0 then
    return 0
  end
  local m = idiv((room + 1) * w - 1, p)
  if m >= w then
    return 0
  end
  return w - m
end

local function elapsed(s, i)
  if now <= s.start[i] then
    return 0
  end
  return idiv(now - s.start[i], C[i])
end

local function weighted(s, i)
  local w = idiv(B[i], C[i])
  return idiv(s.prev[i] * (w - elapsed(s, i)), w)
end

local function normalize(s)
  for i = 1, n do
    local aligned = idiv(now, B[i]) * B[i]
    if s.start[i] < aligned then
      if aligned - s.start[i] == B[i] then
        s.prev[i] = s.cur[i]
      else
        s.prev[i] = 0
      end
      s.cur[i] = 0
      s.start[i] = aligned
    end
  end
end

local function fits(s, i, cost)
  local limit, cur = A[i], s.cur[i]
  if weighted(s, i) + cur + cost <= limit then
    return 0
  end
  local w = idiv(B[i], C[i])
  if cur + cost <= limit then
    return s.start[i] + wait_steps(s.prev[i], limit - cur - cost, w) * C[i] - now
  end
  return s.start[i] + B[i] + wait_steps(cur, limit - cost, w) * C[i] - now
end

local function charge(s, cost)
  for i = 1, n do
    s.cur[i] = s.cur[i] + cost
  end
end

local function uncharge(s, amt)
  for i = 1, n do
    if undo_at == 0 then
      -- No charge named: the newest units first.
      local take = s.cur[i]
      if take > amt then
        take = amt
      end
      s.cur[i] = s.cur[i] - take
      local rest = amt - take
      if s.prev[i] > rest then
        s.prev[i] = s.prev[i] - rest
      else
        s.prev[i] = 0
      end
    elseif undo_at >= s.start[i] then
      -- The charge is in the current window.
      if s.cur[i] > amt then
        s.cur[i] = s.cur[i] - amt
      else
        s.cur[i] = 0
      end
    elseif undo_at + B[i] >= s.start[i] then
      -- In the previous one, which still weighs in.
      if s.prev[i] > amt then
        s.prev[i] = s.prev[i] - amt
      else
        s.prev[i] = 0
      end
    end
  end
end

local function penalize(s, amt)
  for i = 1, n do
    local c = s.cur[i] + amt
    if c > 2 * A[i] then
      c = 2 * A[i]
    end
    s.cur[i] = c
  end
end

local function report(s, i)
  local remaining = A[i] - weighted(s, i) - s.cur[i]
  if remaining < 0 then
    remaining = 0
  end
  local w = idiv(B[i], C[i])
  local reset
  if s.cur[i] > 0 then
    reset = s.start[i] + B[i] + wait_steps(s.cur[i], 0, w) * C[i] - now
  else
    reset = s.start[i] + wait_steps(s.prev[i], 0, w) * C[i] - now
    if reset < 0 then
      reset = 0
    end
  end
  return remaining, reset
end

local function ttl_of(s)
  local t = 0
  for i = 1, n do
    if (s.prev[i] > 0 or s.cur[i] > 0) and s.start[i] + 2 * B[i] - now > t then
      t = s.start[i] + 2 * B[i] - now
    end
  end
  return t
end

local function encode(s, blocked)
  local parts = { fmt(blocked) }
  for i = 1, n do
    parts[#parts + 1] = fmt(s.start[i])
    parts[#parts + 1] = fmt(s.prev[i])
    parts[#parts + 1] = fmt(s.cur[i])
  end
  return TAG .. ':' .. table.concat(parts, ',')
end
