-- rampart rate limiting: the general path's arguments and helpers (any
-- number of tiers, every operation, odd or corrupt states). Reached only
-- when the algorithm's lane fell through; see prelude.lua.
local op = tonumber(ARGV[1])
local block_us = tonumber(ARGV[4])
local undo_at = tonumber(ARGV[5])
local n = tonumber(ARGV[6])
local A, B, C = {}, {}, {}
for i = 1, n do
  A[i] = tonumber(ARGV[4 + 3 * i])
  B[i] = tonumber(ARGV[5 + 3 * i])
  C[i] = tonumber(ARGV[6 + 3 * i])
end
local SAFE = 9007199254740992      -- 2^53: every field stays below
local MAX_COUNT = 4503599627370496 -- 2^52
local MAX_SPAN = 3153600000000000  -- 100 years in us

-- Set by a twin that finds a malformed field while reading lazily; the
-- driver then answers RAMPART_CORRUPT_DATA and writes nothing.
local corrupt_seen = false

-- floor(a / b) for non-negative integers below 2^53, exact.
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function fmt(v)
  return string.format('%d', v)
end

-- The fields of a state value 'tag:n,n,...', or nil if it is malformed.
local function parse_fields(raw, tag)
  if string.sub(raw, 1, 4) ~= tag .. ':' then
    return nil
  end
  local out = {}
  local pos = 5
  local len = #raw
  while true do
    local comma = string.find(raw, ',', pos, true)
    local last = len
    if comma then
      last = comma - 1
    end
    local field = string.sub(raw, pos, last)
    local flen = #field
    if flen == 0 or flen > 16 or string.find(field, '%D') then
      return nil
    end
    local v = tonumber(field)
    if v >= SAFE then
      return nil
    end
    out[#out + 1] = v
    if not comma then
      return out
    end
    pos = comma + 1
  end
end
