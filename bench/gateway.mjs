#!/usr/bin/env node
// @ts-check
// The framework-free floor for an HTTP hop: a bare node:http server answering
// POST /api/execute {tool, args} by forwarding to raw grpc.aio workers over the
// same batched bidi stream as the raw baseline (bench/lib/raw-grpc.mjs).
// Usage: node bench/gateway.mjs unix:///path/a.sock[,unix:///path/b.sock]
// Prints READY <port>; binds 127.0.0.1 only; exits on SIGTERM or stdin EOF.
import http from 'node:http';
import { BidiConn, leastOutstanding } from './lib/raw-grpc.mjs';

const addresses = (process.argv[2] ?? '').split(',').filter(Boolean);
if (addresses.length === 0) {
  console.error('usage: gateway.mjs <worker address>[,<worker address>...]');
  process.exit(2);
}
const conns = addresses.map((a) => new BidiConn(a));
const router = leastOutstanding(conns);

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
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`READY ${typeof address === 'object' && address ? address.port : 0}\n`);
});
const shutdown = () => {
  for (const c of conns) c.close();
  server.close();
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
