import { LUA_NOW_MS, LuaScript } from '../redis/lua-script';

// Every script takes KEYS = [session hash, expiry index] unless noted. The
// hash holds `created`, `ttl` (s), `meta` (JSON), `v` (version), `exp` (ms),
// `w` (last worker) and one `s:<key>` field per state key (JSON text).

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
redis.call('HSET', KEYS[1], 'created', now_ms(), 'ttl', ARGV[2], 'meta', ARGV[3], 'v', 0)
slide(ARGV[1])
return redis.call('HGETALL', KEYS[1])
`);

/**
 * ARGV = [id, last worker or '', n, n pairs of key and JSON value..., deleted keys...]
 * -> the hash after the change, or nil when the session is gone. Sets and
 * deletes key by key, so concurrent writers of different keys never lose
 * each other's changes; any change bumps the version. Also serves touch (no change).
 */
export const COMMIT_SESSION = new LuaScript(`${LUA_NOW_MS}${SLIDE}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local nset = tonumber(ARGV[3])
for i = 1, nset do
  redis.call('HSET', KEYS[1], 's:' .. ARGV[2 + 2 * i], ARGV[3 + 2 * i])
end
for i = 4 + 2 * nset, #ARGV do
  redis.call('HDEL', KEYS[1], 's:' .. ARGV[i])
end
if #ARGV > 3 then redis.call('HINCRBY', KEYS[1], 'v', 1) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'w', ARGV[2]) end
slide(ARGV[1])
return redis.call('HGETALL', KEYS[1])
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
