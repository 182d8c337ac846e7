-- Fixed window: the twin of src/limit/fixed_window.rs.
-- Per tier i: A[i] = limit, B[i] = window (us); state: start[i], count[i].
local TAG = 'fw1'

local function fresh()
  local s = { start = {}, count = {} }
  for i = 1, n do
    s.start[i] = 0
    s.count[i] = 0
  end
  return s
end

local function load(raw)
  local f = parse_fields(raw, TAG)
  if not f then
    return nil
  end
  if #f ~= 1 + 2 * n then
    return f[1], nil
  end
  local s = { start = {}, count = {} }
  for i = 1, n do
    s.start[i] = f[2 * i]
    s.count[i] = f[1 + 2 * i]
  end
  return f[1], s
end

local function normalize(s)
  for i = 1, n do
    local aligned = idiv(now, B[i]) * B[i]
    if s.start[i] < aligned then
      s.start[i] = aligned
      s.count[i] = 0
    end
  end
end

local function fits(s, i, cost)
  if s.count[i] + cost <= A[i] then
    return 0
  end
  return s.start[i] + B[i] - now
end

local function charge(s, cost)
  for i = 1, n do
    s.count[i] = s.count[i] + cost
  end
end

local function uncharge(s, amt)
  for i = 1, n do
    -- A charge made in an earlier window is no longer counted.
    if undo_at == 0 or undo_at >= s.start[i] then
      if s.count[i] > amt then
        s.count[i] = s.count[i] - amt
      else
        s.count[i] = 0
      end
    end
  end
end

local function penalize(s, amt)
  for i = 1, n do
    local c = s.count[i] + amt
    if c > MAX_COUNT then
      c = MAX_COUNT
    end
    s.count[i] = c
  end
end

local function report(s, i)
  local remaining = A[i] - s.count[i]
  if remaining < 0 then
    remaining = 0
  end
  local reset = 0
  if s.count[i] > 0 then
    reset = s.start[i] + B[i] - now
  end
  return remaining, reset
end

local function ttl_of(s)
  local t = 0
  for i = 1, n do
    if s.count[i] > 0 and s.start[i] + B[i] - now > t then
      t = s.start[i] + B[i] - now
    end
  end
  return t
end

local function encode(s, blocked)
  local parts = { fmt(blocked) }
  for i = 1, n do
    parts[#parts + 1] = fmt(s.start[i])
    parts[#parts + 1] = fmt(s.count[i])
  end
  return TAG .. ':' .. table.concat(parts, ',')
end
