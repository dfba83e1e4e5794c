import { LUA_NOW_MS, LuaScript } from '../redis/lua-script';

// KEYS = [node deadlines (sorted set), node records (hash)].

/**
 * ARGV = [channel, ttl ms, node id or '', record JSON] -> every live record.
 * Registers or refreshes the node (when an id is given; a new one is announced
 * as `join <id>`), removes nodes whose deadline passed (announced as
 * `leave <id>`), and returns the records of all that remain. One round trip
 * per heartbeat is the whole periodic resync.
 */
export const SYNC_MEMBERS = new LuaScript(`${LUA_NOW_MS}
local now = now_ms()
if ARGV[3] ~= '' then
  if redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3]) == 1 then
    redis.call('PUBLISH', ARGV[1], 'join ' .. ARGV[3])
  end
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('PUBLISH', ARGV[1], 'lost ' .. id)
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
if #live == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(live))
`);

/** ARGV = [channel, node id]: deregisters the node and announces `leave <id>`. */
export const LEAVE = new LuaScript(`
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[1], 'leave ' .. ARGV[2])
return 1
`);
