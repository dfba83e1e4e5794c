#!/usr/bin/env node
// @ts-check
// Host memory of a Snakepit pool, measured in a fresh process so nothing else
// of the suite is in its heap: starts a Nest application context with a pool
// of `size` workers, runs a few calls on every worker, collects garbage and
// prints `RSS {json}`. The suite runs it for two sizes; the slope is the host
// RSS each extra worker costs. Usage: node --expose-gc bench/rss-probe.mjs <size>
import { fstatSync } from 'node:fs';
import { startSnakepit } from './lib/snakepit.mjs';
import { killAllSync, stopAll } from './lib/procs.mjs';

process.on('exit', killAllSync);
if (fstatSync(0).isFIFO()) {
  process.stdin.on('end', () => process.exit(1)); // the suite died
  process.stdin.resume();
}
const size = Number(process.argv[2] ?? 1);
const gc = /** @type {undefined | (() => void)} */ (globalThis.gc);
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
};
await settle();
const before = process.memoryUsage();
const sp = await startSnakepit({ size });
try {
  for (let round = 0; round < 20; round++) {
    await Promise.all(Array.from({ length: size }, (_, i) => sp.call('add', { a: i, b: round })));
  }
  await settle();
  const after = process.memoryUsage();
  const info = sp.pools.poolInfo()[0];
  process.stdout.write(
    `RSS ${JSON.stringify({ size, ready: info.ready, rss_before: before.rss, rss_after: after.rss, heap_before: before.heapUsed, heap_after: after.heapUsed, external_after: after.external })}\n`,
  );
} finally {
  await sp.close();
  await stopAll();
}
process.exit(0);
