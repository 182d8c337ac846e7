-- rampart rate limiting: the prelude shared by every algorithm's script.
-- The Rust face of the same code is src/limit/engine.rs and state.rs.
-- KEYS[1]: the key. ARGV: op (1 consume, 2 check, 3 refund, 4 penalty,
-- 5 block), amount, now in microseconds ('' = read TIME), block duration
-- (us), time of the charge being undone (0 = none), number of tiers, then
-- three integers per tier.
local op = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local now
if ARGV[3] == nil or ARGV[3] == '' then
  -- Redis before 5 needs effects replication to write after TIME.
  if redis.replicate_commands then
    redis.replicate_commands()
  end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
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
local MAX_NOW = 4503599627370496   -- 2^52 us, around 2112
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
