-- rampart per-user index: the Lua twin of IndexOp in index.rs.
-- KEYS[1] = the index "1|<generation>|<handle>,<created>,<expires>;..."
--           (times in microseconds since the epoch, handles base64url)
-- ARGV[1] = action: add | touch | replace | remove | clear | list
-- ARGV[2] = retention_us: the index outlives its last entry by at least this
-- ARGV[3] = now_us ('' = the server's TIME)
-- ARGV[4..] by action:
--   add     handle, created, expires, max, expected generation ('' = any)
--   touch   handle, new expires ('' = none)
--   replace old handle, new handle, expires
--   remove  handle
--   clear   handle to keep ('' = none)
-- Reply: {found, generation, {removed handles}, {handle, created, expires, ...}}
--        (entries for list only) | {-1} corrupt index | {-2} unknown action
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local max = 9007199254740991
local function num(s)
  if #s > 16 then return nil end
  local n = tonumber(s)
  if n > max then return nil end
  return n
end
local gen = 0
local hs, cs, es = {}, {}, {}
local changed = false
local raw = redis.call('GET', KEYS[1])
if raw then
  local g, pos = string.match(raw, '^1|(%d+)|()')
  if not g then return {-1} end
  gen = num(g)
  if not gen then return {-1} end
  while pos <= #raw do
    local h, c, e, nxt = string.match(raw, '^([%w_%-]+),(%d+),(%d+);()', pos)
    if not h then return {-1} end
    c, e = num(c), num(e)
    if not c or not e then return {-1} end
    if e > now then
      hs[#hs + 1], cs[#cs + 1], es[#es + 1] = h, c, e
    else
      changed = true
    end
    pos = nxt
  end
end
local function find(h)
  for i = 1, #hs do
    if hs[i] == h then return i end
  end
  return nil
end
local function drop(i)
  table.remove(hs, i)
  table.remove(cs, i)
  table.remove(es, i)
end
local action = ARGV[1]
local found = 0
local removed = {}
if action == 'add' then
  if ARGV[8] == '' or tonumber(ARGV[8]) == gen then
    local i = find(ARGV[4])
    if i then drop(i) end
    hs[#hs + 1], cs[#cs + 1], es[#es + 1] = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
    changed = true
    found = 1
    local cap = tonumber(ARGV[7])
    while #hs > cap do
      local oldest = 1
      for j = 2, #hs - 1 do
        if cs[j] < cs[oldest] then oldest = j end
      end
      removed[#removed + 1] = hs[oldest]
      drop(oldest)
    end
  end
elseif action == 'touch' then
  local i = find(ARGV[4])
  if i then
    found = 1
    if ARGV[5] ~= '' then
      local e = tonumber(ARGV[5])
      if e > es[i] then
        es[i] = e
        changed = true
      end
    end
  end
elseif action == 'replace' then
  local i = find(ARGV[4])
  if i then
    found = 1
    hs[i] = ARGV[5]
    local e = tonumber(ARGV[6])
    if e > es[i] then es[i] = e end
    changed = true
  end
elseif action == 'remove' then
  local i = find(ARGV[4])
  if i then
    found = 1
    drop(i)
    changed = true
  end
elseif action == 'clear' then
  local kh, kc, ke = {}, {}, {}
  for i = 1, #hs do
    if found == 0 and ARGV[4] ~= '' and hs[i] == ARGV[4] then
      kh[1], kc[1], ke[1] = hs[i], cs[i], es[i]
      found = 1
    else
      removed[#removed + 1] = hs[i]
    end
  end
  hs, cs, es = kh, kc, ke
  if gen < max then gen = gen + 1 end
  changed = true
elseif action ~= 'list' then
  return {-2}
end
if changed then
  if #hs == 0 and gen == 0 then
    redis.call('DEL', KEYS[1])
  else
    local parts = {string.format('1|%.0f|', gen)}
    local last = now + tonumber(ARGV[2])
    for i = 1, #hs do
      parts[#parts + 1] = string.format('%s,%.0f,%.0f;', hs[i], cs[i], es[i])
      if es[i] > last then last = es[i] end
    end
    local ms = math.ceil((last - now) / 1000)
    if ms < 1 then ms = 1 end
    redis.call('SET', KEYS[1], table.concat(parts), 'PX', ms)
  end
end
local entries = {}
if action == 'list' then
  for i = 1, #hs do
    entries[#entries + 1] = hs[i]
    entries[#entries + 1] = cs[i]
    entries[#entries + 1] = es[i]
  end
end
return {found, gen, removed, entries}
