import * as grpc from '@grpc/grpc-js';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { locateProtoRoot, PROTO_LOADER_OPTIONS, type SnakepitErrorBody } from '@snakepit/nestjs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { ProtoGrpcType } from '../../apps/sample/src/generated/snakepit';
import type { SnakepitDefinition } from '../../apps/sample/src/generated/snakepit/v1/Snakepit';
import { HealthClient } from './health-client';

const SNAKEPIT_PROTO = 'snakepit/v1/snakepit.proto';
const REPO_ROOT = resolve(__dirname, '..', '..');

function loadDefinition() {
  return loadSync(SNAKEPIT_PROTO, { ...PROTO_LOADER_OPTIONS, includeDirs: [locateProtoRoot()] });
}

/** A method's request and its decoded answer, as the generated definition types them. */
type RequestOf<M extends keyof SnakepitDefinition> =
  SnakepitDefinition[M] extends MethodDefinition<infer Request, infer _A, infer _B, infer _C> ? Request : never;
type AnswerOf<M extends keyof SnakepitDefinition> = SnakepitDefinition[M] extends MethodDefinition<infer _A, infer _B, infer _C, infer Answer> ? Answer : never;
type UnaryMethod = 'Execute' | 'CreateSession' | 'GetSession' | 'DeleteSession' | 'ListTools';

/** A client of the sample app's public `snakepit.v1.Snakepit` service, with promise helpers. */
export function snakepitClient(address: string) {
  // The proto-loader stubs give the loaded package its types (apps/sample/src/generated, built by scripts/setup.mjs).
  const { Snakepit } = (grpc.loadPackageDefinition(loadDefinition()) as unknown as ProtoGrpcType).snakepit.v1;
  // Room for the large arrays some specs send (the sample app takes up to GRPC_MAX_MESSAGE_BYTES).
  const client = new Snakepit(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  // Calls go by path, as the generated methods make them. The cast restates what SnakepitDefinition says of `name`:
  // tsc cannot follow a generic key into the conditional types above.
  const method = <M extends keyof SnakepitDefinition>(name: M) =>
    Snakepit.service[name] as unknown as MethodDefinition<RequestOf<M>, unknown, unknown, AnswerOf<M>>;
  const unary = <M extends UnaryMethod>(name: M, request: RequestOf<M>): Promise<AnswerOf<M>> =>
    new Promise((resolve, reject) => {
      const { path, requestSerialize, responseDeserialize } = method(name);
      client.makeUnaryRequest(path, requestSerialize, responseDeserialize, request, { deadline: Date.now() + 30_000 }, (error, response) =>
        error ? reject(error) : resolve(response!),
      );
    });
  /** A server-streaming call's messages, and the error it ended with (undefined when it ended well). */
  const serverStream = (
    name: 'ExecuteStream',
    request: RequestOf<'ExecuteStream'>,
  ): Promise<{ messages: Array<AnswerOf<'ExecuteStream'>>; error?: grpc.ServiceError }> =>
    new Promise((resolve) => {
      const messages: Array<AnswerOf<'ExecuteStream'>> = [];
      const { path, requestSerialize, responseDeserialize } = method(name);
      const call = client.makeServerStreamRequest(path, requestSerialize, responseDeserialize, request, { deadline: Date.now() + 30_000 });
      call.on('data', (message: AnswerOf<'ExecuteStream'>) => messages.push(message));
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
