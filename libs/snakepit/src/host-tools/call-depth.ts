import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * How many host-tool hops the current async context is inside: a host tool
 * that calls PoolService.execute passes its depth on, so Python -> host ->
 * Python -> ... recursion is bounded.
 */
const depthStorage = new AsyncLocalStorage<number>();

export function currentHostCallDepth(): number {
  return depthStorage.getStore() ?? 0;
}

export function runAtHostCallDepth<T>(depth: number, fn: () => T): T {
  return depthStorage.run(depth, fn);
}
