import { LUA_NOW_MS, LuaScript } from '../redis/lua-script';

// Every script takes KEYS = [session hash, expiry index] unless noted. The
// hash holds `created`, `ttl` (s), `meta` (JSON), `v` (version), `exp` (ms),
// `w` (last worker), `b` and `n` (the state's bytes and keys, for the caps) and
// one `s:<key>` field per state key (JSON text). The prefix keeps every key,
// `__proto__` included, apart from the fixed fields.

/** Slides a live session's expiry to now + ttl in the hash, its Redis TTL and the expiry index. */
const SLIDE = `
local function slide(id)
  local ttl_ms = tonumber(redis.call('HGET', KEYS[1], 'ttl')) * 1000
  local expires = now_ms() + ttl_ms
  redis.call('HSET', KEYS[1], 'exp', expires)
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
  redis.call('ZADD', KEYS[2], expires, id)
end
`;

/** ARGV = [id, ttlSeconds, metadata JSON] -> the new hash. */
export const CREATE_SESSION = new LuaScript(`${LUA_NOW_MS}${SLIDE}
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'created', now_ms(), 'ttl', ARGV[2], 'meta', ARGV[3], 'v', 0, 'b', 0, 'n', 0)
slide(ARGV[1])
return redis.call('HGETALL', KEYS[1])
`);

/** ARGV = [id, last worker or ''] -> the hash after sliding its expiry, or nil when the session is gone. */
export const TOUCH_SESSION = new LuaScript(`${LUA_NOW_MS}${SLIDE}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'w', ARGV[2]) end
slide(ARGV[1])
return redis.call('HGETALL', KEYS[1])
`);

/**
 * ARGV = [id, last worker or '', expected version or '', max bytes, max keys,
 * n, n pairs of key and JSON value..., deleted keys...] ->
 * {'committed', version} | {'not_found'} | {'conflict', stored version} |
 * {'too_large', 'maxBytes' or 'maxKeys', bytes, keys}.
 * One atomic step: compare the version, size the state as it would be, then
 * set and delete key by key (sets first, then deletions), or write nothing.
 * Growing past a cap is refused; shrinking an over-cap state is not. A
 * non-empty delta bumps the version.
 */
export const COMMIT_SESSION = new LuaScript(`${LUA_NOW_MS}${SLIDE}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local version = tonumber(redis.call('HGET', KEYS[1], 'v'))
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= version then return {'conflict', version} end

local bytes, keys = tonumber(redis.call('HGET', KEYS[1], 'b')), tonumber(redis.call('HGET', KEYS[1], 'n'))
if not bytes or not keys then
  -- Written by a release without the counters: count once.
  bytes, keys = 0, 0
  local flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, 2) == 's:' then
      bytes = bytes + #flat[i] - 2 + #flat[i + 1]
      keys = keys + 1
    end
  end
end
local old_bytes, old_keys = bytes, keys

-- The net change per key: its new JSON text, or false for a deletion.
local nset = tonumber(ARGV[6])
local changes = {}
for i = 1, nset do changes[ARGV[5 + 2 * i]] = ARGV[6 + 2 * i] end
for i = 7 + 2 * nset, #ARGV do changes[ARGV[i]] = false end
local changed = false
for key, value in pairs(changes) do
  changed = true
  local field = 's:' .. key
  if redis.call('HEXISTS', KEYS[1], field) == 1 then
    bytes = bytes - #key - redis.call('HSTRLEN', KEYS[1], field)
    keys = keys - 1
  end
  if value then
    bytes = bytes + #key + #value
    keys = keys + 1
  end
end
if keys > tonumber(ARGV[5]) and keys > old_keys then return {'too_large', 'maxKeys', bytes, keys} end
if bytes > tonumber(ARGV[4]) and bytes > old_bytes then return {'too_large', 'maxBytes', bytes, keys} end

for key, value in pairs(changes) do
  if value then redis.call('HSET', KEYS[1], 's:' .. key, value) else redis.call('HDEL', KEYS[1], 's:' .. key) end
end
if changed then version = redis.call('HINCRBY', KEYS[1], 'v', 1) end
redis.call('HSET', KEYS[1], 'b', bytes, 'n', keys)
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'w', ARGV[2]) end
slide(ARGV[1])
return {'committed', version}
`);

/** ARGV = [id] -> 1 when the session existed. */
export const DELETE_SESSION = new LuaScript(`
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return existed
`);

/**
 * KEYS = [expiry index], ARGV = [limit] -> ids whose expiry passed. Redis has
 * already dropped their hashes (same instant, same clock); removing them from
 * the index here means exactly one node reports each expiry.
 */
export const SWEEP_SESSIONS = new LuaScript(`${LUA_NOW_MS}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
`);

/** KEYS = [expiry index] -> number of live sessions. */
export const COUNT_SESSIONS = new LuaScript(`${LUA_NOW_MS}
return redis.call('ZCOUNT', KEYS[1], now_ms(), '+inf')
`);
