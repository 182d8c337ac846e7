//! The store primitives that need more than one Redis command, each one
//! script call (so one round trip and atomic).

use rampart::Script;

/// ARGV: has_expected, expected, has_new, new, ttl_ms (0 = none).
/// Reply: {1} swapped, or {0, current-or-nil}.
pub(crate) static CAS: Script = Script::new(
    r#"local cur = redis.call('GET', KEYS[1])
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
return {1}"#,
);

/// ARGV: expected. Reply: 1 deleted, 0 not.
pub(crate) static DELETE_IF_EQUAL: Script = Script::new(
    r#"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0"#,
);

/// ARGV: expected, ttl_ms (0 = persist). Reply: 1 done, 0 not.
pub(crate) static EXPIRE_IF_EQUAL: Script = Script::new(
    r#"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1"#,
);

/// ARGV: delta, ttl_ms_if_created (0 = none). Reply: the new value.
pub(crate) static INCREMENT: Script = Script::new(
    r#"local existed = redis.call('EXISTS', KEYS[1])
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and ARGV[2] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n"#,
);
