import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/**
 * Lua prelude giving every script the Redis server's clock in ms: all expiry
 * decisions use one clock, whatever the nodes' clocks say.
 */
export const LUA_NOW_MS = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * A Lua script run atomically by Redis. Sent by SHA (EVALSHA); when Redis
 * forgot it (a restart flushes the script cache) it is sent whole once more.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
