'use strict';
// The store primitives that need more than one Redis command, each one
// script call (one round trip, atomic). They mirror
// backends/redis/src/scripts.rs, so Rust and Node share the semantics.

const { createHash } = require('node:crypto');

function script(source) {
  return Object.freeze({ source, sha1: createHash('sha1').update(source).digest('hex') });
}

/** ARGV: has_expected, expected, has_new, new, ttl_ms (0 = none). Reply: {1} or {0, current}. */
const CAS = script(`local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return {0, cur} end
elseif cur then
  return {0, cur}
end
if ARGV[3] == '1' then
  if ARGV[5] ~= '0' then
    redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
  else
    redis.call('SET', KEYS[1], ARGV[4])
  end
elseif cur then
  redis.call('DEL', KEYS[1])
end
return {1}`);

/** ARGV: expected. Reply: 1 deleted, 0 not. */
const DELETE_IF_EQUAL = script(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`);

/** ARGV: expected, ttl_ms (0 = persist). Reply: 1 done, 0 not. */
const EXPIRE_IF_EQUAL = script(`if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`);

/** ARGV: delta, ttl_ms_if_created (0 = none). Reply: the new value. */
const INCREMENT = script(`local existed = redis.call('EXISTS', KEYS[1])
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and ARGV[2] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n`);

module.exports = { CAS, DELETE_IF_EQUAL, EXPIRE_IF_EQUAL, INCREMENT };
