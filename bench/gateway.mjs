#!/usr/bin/env node
// @ts-check
// The two floors for an HTTP hop, answering POST /api/execute {tool, args} by
// forwarding to raw grpc.aio workers over the same batched bidi stream as the
// raw baseline (bench/lib/raw-grpc.mjs), with no Snakepit code:
//   default  a bare node:http server (what the hop costs without a framework);
//   --nest   a minimal Nest app on the sample app's HTTP platform (Fastify), one
//            controller (what the framework alone costs: the sample app minus Snakepit).
// Usage: node bench/gateway.mjs [--nest] unix:///path/a.sock[,unix:///path/b.sock]
// Prints READY <port>; binds 127.0.0.1 only; exits on SIGTERM or stdin EOF.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { BidiConn, leastOutstanding } from './lib/raw-grpc.mjs';

const { values, positionals } = parseArgs({ options: { nest: { type: 'boolean', default: false } }, allowPositionals: true });
const addresses = (positionals[0] ?? '').split(',').filter(Boolean);
if (addresses.length === 0) {
  console.error('usage: gateway.mjs [--nest] <worker address>[,<worker address>...]');
  process.exit(2);
}
const conns = addresses.map((a) => new BidiConn(a));
const router = leastOutstanding(conns);

/** @returns {Promise<{ port: number, close: () => Promise<unknown> }>} */
async function bareServer() {
  /** @param {http.ServerResponse} res @param {number} status @param {unknown} body */
  function send(res, status, body) {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/api/execute') return send(res, 404, { error: 'not found' });
    /** @type {Buffer[]} */
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        return send(res, 400, { error: 'invalid JSON' });
      }
      router.call(String(body.tool), body.args ?? {}).then(
        (result) => send(res, 200, { result }),
        (e) => send(res, 500, { error: String(e?.message ?? e) }),
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: async () => {
      server.close();
      server.closeAllConnections();
    },
  };
}

/** @returns {Promise<{ port: number, close: () => Promise<unknown> }>} */
async function nestServer() {
  await import('reflect-metadata');
  const { Body, Controller, HttpCode, Module, Post } = await import('@nestjs/common');
  const { NestFactory } = await import('@nestjs/core');
  // Plain JS has no decorator syntax: the decorators are applied by hand.
  class FloorController {
    /** @param {{ tool?: unknown, args?: object }} body */
    async execute(body) {
      return { result: await router.call(String(body.tool), body.args ?? {}) };
    }
  }
  Controller('api')(FloorController);
  const method = /** @type {PropertyDescriptor} */ (Object.getOwnPropertyDescriptor(FloorController.prototype, 'execute'));
  Post('execute')(FloorController.prototype, 'execute', method);
  HttpCode(200)(FloorController.prototype, 'execute', method);
  Body()(FloorController.prototype, 'execute', 0);
  class FloorModule {}
  Module({ controllers: [FloorController] })(FloorModule);
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  const app = await NestFactory.create(FloorModule, new FastifyAdapter(), { logger: ['error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address();
  return { port: typeof address === 'object' && address ? address.port : 0, close: () => app.close() };
}

const server = await (values.nest ? nestServer() : bareServer());
process.stdout.write(`READY ${server.port}\n`);
const shutdown = () => {
  for (const c of conns) c.close();
  void server.close();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
