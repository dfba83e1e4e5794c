// @ts-check
// Snakepit in-process: a Nest application context with SnakepitModule.forRoot,
// driven through the public PoolService (and SessionService for sessions).
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { PoolService, SessionService, SnakepitModule } from '@snakepit/nestjs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PYTHON } from './raw-grpc.mjs';
import { registerCleanup, registerPids, unregisterPids } from './procs.mjs';

let seq = 0;
/** @type {string | undefined} */
let privateDir;
/** A private temp dir for sockets and the process registry, removed when the suite stops. */
function benchDir() {
  if (!privateDir) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spbench-sp-'));
    privateDir = dir;
    registerCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  }
  return privateDir;
}

export const SHOWCASE = 'snakepit_bridge.examples.showcase:ShowcaseAdapter';

/**
 * @typedef {object} SnakepitPoolSpec
 * @property {number} size
 * @property {number} [threadsPerWorker] >1: the `thread` profile with this many threads per worker
 * @property {number} [startConcurrency]
 * @property {string} [socketDir]
 * @property {Record<string, string>} [env]      extra environment for the workers
 * @property {Record<string, unknown>} [poolOptions] extra pool options (experiments)
 */

/**
 * Starts a Nest application context with one pool named `default`.
 * Resolves once every worker answered its first round trip (onModuleInit).
 * @param {SnakepitPoolSpec} spec
 */
export async function startSnakepit(spec) {
  const pool = {
    name: 'default',
    size: spec.size,
    adapter: SHOWCASE,
    // Calls one worker runs at once: above 1, the `thread` profile with that many threads.
    ...(spec.threadsPerWorker && spec.threadsPerWorker > 1 ? { profile: /** @type {const} */ ('thread'), threadsPerWorker: spec.threadsPerWorker } : {}),
    ...(spec.startConcurrency ? { startConcurrency: spec.startConcurrency } : {}),
    // A closed loop at c=64 on a pool of 1 x 2 ms calls queues for ~130 ms: far below these.
    timeoutMs: 30_000,
    queueTimeoutMs: 20_000,
    ...(spec.env ? { env: spec.env } : {}),
    ...(spec.poolOptions ?? {}),
  };
  const dir = spec.socketDir ?? benchDir();
  const app = await NestFactory.createApplicationContext(
    SnakepitModule.forRoot({
      python: PYTHON,
      pools: [pool],
      stopGraceMs: 2000,
      drainTimeoutMs: 2000,
      socketDir: dir,
      // Every context is its own instance with its own registry: a context must never
      // take another's workers (or a concurrently running test's) for leftovers.
      instanceName: `bench-${process.pid}-${++seq}`,
      stateDir: dir,
    }),
    { logger: ['error', 'warn'], abortOnError: false },
  );
  const pools = app.get(PoolService);
  const sessions = app.get(SessionService);
  const pids = pools.poolInfo()[0].workers.map((w) => w.pid);
  registerPids(pids);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    unregisterCleanup();
    await app.close();
    unregisterPids(pids);
  };
  const unregisterCleanup = registerCleanup(close);
  return {
    app,
    pools,
    sessions,
    pids,
    /** @param {string} tool @param {object} args @param {import('@snakepit/nestjs').ExecuteOptions} [options] */
    call: (tool, args, options) => pools.execute(tool, args, options),
    close,
  };
}
