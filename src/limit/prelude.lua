-- rampart rate limiting: the start of every algorithm's script (the
-- twin of the first lines of `decide` in src/limit/engine.rs).
--
-- A script is assembled (src/limit/engine.rs, module `scripts`) as
--   prelude.lua          arguments, the clock, the stored value
--   <algorithm>_lane.lua the one-tier consume/check lane (returns, or falls
--                        through when the case is not its own)
--   tiers.lua            the per-tier arguments and helpers of the general path
--   <algorithm>.lua      the algorithm's steps (the twin of its `Engine` impl)
--   driver.lua           the general decision flow (the twin of `decide`)
--
-- Redis runs the whole chunk on every call, so every table, closure and
-- string made at top level is paid per call: the prelude makes none, a
-- lane only what its call needs (one parse, one encoding, the reply), and
-- the general path's tables and closures are only made when a lane falls
-- through.
--
-- KEYS[1]: the key. ARGV: op (1 consume, 2 check, 3 refund, 4 penalty,
-- 5 block), amount, now in microseconds ('' = read TIME), block duration
-- (us), time of the charge being undone (0 = none), number of tiers, then
-- three integers per tier.
--
-- Numbers are read with `+ 0` (Lua's string coercion) rather than
-- tonumber(): the same strtod without a C function call, a third of the
-- cost. Every argument is a decimal integer written by the Rust face.
local amount = ARGV[2] + 0
local now = ARGV[3]
if now == nil or now == '' then
  -- Redis before 5 needs effects replication to write after TIME.
  if redis.replicate_commands then
    redis.replicate_commands()
  end
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now = now + 0
end
if now > 4503599627370496 then -- MAX_NOW: 2^52 us, around 2112
  return redis.error_reply('RAMPART_INVALID_INPUT the clock reads after the year 2112')
end
local raw = redis.call('GET', KEYS[1])

-- The lanes divide with a bare math.floor(a / b): for integers with
-- a + b < 2^53 (every lane division: times below 2^52, spans, counts and
-- products the rules keep below 2^52) the double quotient never rounds
-- across an integer, so it is the exact floor that idiv (tiers.lua)
-- computes with its correction steps.
