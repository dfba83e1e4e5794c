import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { locateProtoRoot, PROTO_LOADER_OPTIONS, type SnakepitErrorBody } from '@snakepit/nestjs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { HealthClient } from './health-client';

const SNAKEPIT_PROTO = 'snakepit/v1/snakepit.proto';
const REPO_ROOT = resolve(__dirname, '..', '..');

function loadDefinition() {
  return loadSync(SNAKEPIT_PROTO, { ...PROTO_LOADER_OPTIONS, includeDirs: [locateProtoRoot()] });
}

/** A client of the sample app's public `snakepit.v1.Snakepit` service, with promise helpers. */
export function snakepitClient(address: string) {
  const pkg = grpc.loadPackageDefinition(loadDefinition()) as any;
  const client: grpc.Client & Record<string, any> = new pkg.snakepit.v1.Snakepit(address, grpc.credentials.createInsecure());
  const unary = <T = any>(method: string, request: object): Promise<T> =>
    new Promise((resolve, reject) =>
      client[method](request, { deadline: Date.now() + 30_000 }, (error: grpc.ServiceError | null, response: T) => (error ? reject(error) : resolve(response))),
    );
  /** A server-streaming call's messages, and the error it ended with (undefined when it ended well). */
  const serverStream = <T = any>(method: string, request: object): Promise<{ messages: T[]; error?: grpc.ServiceError }> =>
    new Promise((resolve) => {
      const messages: T[] = [];
      const call: grpc.ClientReadableStream<T> = client[method](request, { deadline: Date.now() + 30_000 });
      call.on('data', (message: T) => messages.push(message));
      call.on('error', (error: grpc.ServiceError) => resolve({ messages, error }));
      call.on('end', () => resolve({ messages }));
    });
  return { client, unary, serverStream, health: new HealthClient(address) };
}

/** The structured body a Snakepit gRPC error carries in its `snakepit-error-body-bin` trailer (UTF-8 JSON). */
export function errorBody(error: Pick<grpc.ServiceError, 'code' | 'details' | 'metadata'>): SnakepitErrorBody['error'] {
  const [value] = error.metadata.get('snakepit-error-body-bin');
  if (!Buffer.isBuffer(value)) throw new Error(`no snakepit-error-body-bin trailer on status ${error.code} (${error.details})`);
  return (JSON.parse(value.toString('utf8')) as SnakepitErrorBody).error;
}

/** What a C-core client saw of a failed call: its status, its decoded message and its trailers (`-bin` ones as Buffers). */
export interface CoreClientStatus {
  code: number;
  details: string;
  metadata: Record<string, string | Buffer>;
}

const CORE_CLIENT_SCRIPT = `
import base64, json, sys
import grpc
address, method = sys.argv[1], sys.argv[2]
request = base64.b64decode(sys.stdin.read())
with grpc.insecure_channel(address) as channel:
    try:
        channel.unary_unary(method)(request, timeout=30)
        print(json.dumps({"code": 0, "details": "", "metadata": {}}))
    except grpc.RpcError as error:
        metadata = {key: base64.b64encode(value).decode() if key.endswith("-bin") else value for key, value in error.trailing_metadata() or ()}
        print(json.dumps({"code": error.code().value[0], "details": error.details(), "metadata": metadata}))
`;

/**
 * One unary call of `snakepit.v1.Snakepit` through Python's grpcio, a C-core
 * client: unlike grpc-js it enforces the 8 KiB default metadata limit, so it
 * shows whether an error's trailers reach such clients.
 */
export function coreClientUnary(address: string, method: string, request: object): CoreClientStatus {
  const definition = loadDefinition()['snakepit.v1.Snakepit'] as grpc.ServiceDefinition;
  const { path, requestSerialize } = definition[method];
  const run = spawnSync(join(REPO_ROOT, '.venv', 'bin', 'python'), ['-c', CORE_CLIENT_SCRIPT, address, path], {
    input: requestSerialize(request).toString('base64'),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (run.status !== 0) throw new Error(`the grpcio client failed (${run.status ?? run.signal}): ${run.stderr}`);
  const answer = JSON.parse(run.stdout) as { code: number; details: string; metadata: Record<string, string> };
  const metadata = Object.fromEntries(
    Object.entries(answer.metadata).map(([key, value]) => [key, key.endsWith('-bin') ? Buffer.from(value, 'base64') : value]),
  );
  return { code: answer.code, details: answer.details, metadata };
}

export { HealthClient };
