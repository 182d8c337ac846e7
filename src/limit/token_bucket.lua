-- Token bucket (GCRA): the twin of src/limit/token_bucket.rs.
-- Per tier i: A[i] = bucket size, B[i] = us per token; state s[i] = tat.
local TAG = 'tb1'

local function fresh()
  local s = {}
  for i = 1, n do
    s[i] = 0
  end
  return s
end

local function load(raw)
  local f = parse_fields(raw, TAG)
  if not f then
    return nil
  end
  if #f ~= 1 + n then
    return f[1], nil
  end
  local s = {}
  for i = 1, n do
    s[i] = f[1 + i]
  end
  return f[1], s
end

local function normalize(s)
  for i = 1, n do
    if s[i] < now then
      s[i] = now
    end
  end
end

local function fits(s, i, cost)
  local need = s[i] - now + cost * B[i]
  local cap = A[i] * B[i]
  if need <= cap then
    return 0
  end
  return need - cap
end

local function charge(s, cost)
  for i = 1, n do
    s[i] = s[i] + cost * B[i]
  end
end

local function uncharge(s, amt)
  for i = 1, n do
    local t = s[i] - amt * B[i]
    if t < now then
      t = now
    end
    s[i] = t
  end
end

local function penalize(s, amt)
  local cap = now + MAX_SPAN
  for i = 1, n do
    local t = s[i] + amt * B[i]
    if t > cap then
      t = cap
    end
    if t > s[i] then
      s[i] = t
    end
  end
end

local function report(s, i)
  local debt = s[i] - now
  local cap = A[i] * B[i]
  local remaining = 0
  if debt < cap then
    remaining = idiv(cap - debt, B[i])
  end
  return remaining, debt
end

local function ttl_of(s)
  local t = 0
  for i = 1, n do
    if s[i] - now > t then
      t = s[i] - now
    end
  end
  return t
end

local function encode(s, blocked)
  local parts = { fmt(blocked) }
  for i = 1, n do
    parts[#parts + 1] = fmt(s[i])
  end
  return TAG .. ':' .. table.concat(parts, ',')
end
