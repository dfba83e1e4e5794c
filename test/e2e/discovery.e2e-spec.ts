import { expect } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { dirname, join } from 'node:path';
import type { SnakepitErrorBody } from '@snakepit/nestjs';
import { Root } from 'protobufjs';
import { FileDescriptorProto, type IFileDescriptorProto, type IFileDescriptorSet } from 'protobufjs/ext/descriptor';
import { startSampleApp, type SampleApp } from '../helpers/sample-app';

jest.setTimeout(60_000);

/**
 * What a Nest user reaches for first, black-box against the built sample app:
 * gRPC server reflection (what grpcurl, grpcui and Postman use) through a
 * reflection client written with grpc-js, so the suite needs no Go, and the
 * OpenAPI document with Swagger UI for the HTTP API.
 */

/** The reflection answers this test reads (keepCase: the .proto's own field names). */
interface ReflectionResponse {
  message_response: 'list_services_response' | 'file_descriptor_response' | 'error_response';
  list_services_response?: { service: Array<{ name: string }> };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}
type ReflectionRequest = { list_services: string } | { file_containing_symbol: string };

// The reflection protos ship inside @grpc/reflection: the client uses the very contract the server implements.
const REFLECTION_PROTOS = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');

/** One request on a fresh ServerReflectionInfo stream (v1, or v1alpha that older clients use), and its answer. */
function reflect(address: string, request: ReflectionRequest, version: 'v1' | 'v1alpha' = 'v1'): Promise<ReflectionResponse> {
  const service = `grpc.reflection.${version}.ServerReflection`;
  const definition = loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [REFLECTION_PROTOS],
    keepCase: true,
    oneofs: true,
    defaults: true,
  });
  const Client = grpc.makeGenericClientConstructor(definition[service] as grpc.ServiceDefinition, service);
  const client = new Client(address, grpc.credentials.createInsecure());
  const open = client.ServerReflectionInfo as (options: grpc.CallOptions) => grpc.ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
  return new Promise<ReflectionResponse>((resolve, reject) => {
    const call = open.call(client, { deadline: Date.now() + 10_000 });
    call.once('data', (response: ReflectionResponse) => {
      resolve(response);
      call.end();
    });
    call.once('error', reject);
    call.write(request);
  }).finally(() => client.close());
}

/** The file descriptors reflection answers for a symbol, decoded. */
async function filesFor(address: string, symbol: string): Promise<IFileDescriptorProto[]> {
  const response = await reflect(address, { file_containing_symbol: symbol });
  expect(response.message_response).toBe('file_descriptor_response');
  return response.file_descriptor_response!.file_descriptor_proto.map((bytes) => FileDescriptorProto.decode(bytes) as unknown as IFileDescriptorProto);
}

// protobufjs' descriptor extension adds Root.fromDescriptor without declaring it in its types.
const rootFromDescriptor = (Root as unknown as { fromDescriptor(this: void, set: IFileDescriptorSet): Root }).fromDescriptor;

/** Every `$ref` in an OpenAPI document. */
function refsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsOf);
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, nested]) => (key === '$ref' && typeof nested === 'string' ? [nested] : refsOf(nested)));
}

interface SchemaObject {
  type?: string;
  properties?: Record<string, SchemaObject & { $ref?: string; allOf?: Array<{ $ref: string }> }>;
  required?: string[];
  enum?: unknown[];
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<
    string,
    Record<
      string,
      {
        requestBody?: { content: Record<string, { schema: { $ref: string } }> };
        responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
      }
    >
  >;
  components: { schemas: Record<string, SchemaObject> };
}

describe('sample app: discovery (gRPC reflection, OpenAPI and Swagger UI)', () => {
  let app: SampleApp;

  beforeAll(async () => {
    app = await startSampleApp({ SNAKEPIT_POOL_SIZE: '1' });
  });

  afterAll(async () => {
    await app?.stop();
  });

  describe('gRPC server reflection', () => {
    it.each(['v1', 'v1alpha'] as const)('lists the public API and the health service (%s)', async (version) => {
      const response = await reflect(app.grpcAddress, { list_services: '' }, version);
      expect(response.list_services_response!.service.map((s) => s.name).sort()).toEqual(['grpc.health.v1.Health', 'snakepit.v1.Snakepit']);
    });

    it("resolves a method's descriptor, with the .proto's field names, and it is enough to call the method", async () => {
      const files = await filesFor(app.grpcAddress, 'snakepit.v1.Snakepit');
      const root = rootFromDescriptor({ file: files });
      const execute = root.lookupService('snakepit.v1.Snakepit').methods.Execute;
      execute.resolve();
      const request = execute.resolvedRequestType!;
      const response = execute.resolvedResponseType!;
      expect(request.fullName).toBe('.snakepit.v1.ExecuteRequest');
      expect(Object.keys(request.fields)).toEqual(expect.arrayContaining(['tool', 'args_json', 'pool', 'session_id', 'timeout_ms']));
      expect(execute.responseStream).toBeFalsy();
      expect(root.lookupService('snakepit.v1.Snakepit').methods.ExecuteStream.responseStream).toBe(true);

      // What grpcurl does: encode the request from the reflected types alone.
      const client = new grpc.Client(app.grpcAddress, grpc.credentials.createInsecure());
      try {
        const answer = await new Promise<Record<string, unknown>>((resolve, reject) =>
          client.makeUnaryRequest(
            '/snakepit.v1.Snakepit/Execute',
            (message: object) => Buffer.from(request.encode(request.fromObject(message)).finish()),
            (bytes: Buffer) => response.toObject(response.decode(bytes)),
            { tool: 'add', args_json: JSON.stringify({ a: 2, b: 3 }) },
            { deadline: Date.now() + 15_000 },
            (error, value) => (error ? reject(error) : resolve(value!)),
          ),
        );
        expect(answer).toMatchObject({ result_json: '5', pool: 'default', worker_id: 'default-1' });
      } finally {
        client.close();
      }
    });

    it("describes grpc.health.v1 with protoc's map entry names, which Go clients (grpcurl) require", async () => {
      const files = await filesFor(app.grpcAddress, 'grpc.health.v1.Health');
      const list = files.flatMap((file) => file.messageType ?? []).find((message) => message.name === 'HealthListResponse');
      expect(list?.nestedType?.map((nested) => [nested.name, nested.options?.mapEntry])).toEqual([['StatusesEntry', true]]);
      expect(list?.field?.find((field) => field.name === 'statuses')?.typeName).toMatch(/(^|\.)StatusesEntry$/);
    });

    it('answers a symbol it does not know with NOT_FOUND', async () => {
      const response = await reflect(app.grpcAddress, { file_containing_symbol: 'snakepit.v1.NoSuchService' });
      expect(response.message_response).toBe('error_response');
      expect(response.error_response!.error_code).toBe(grpc.status.NOT_FOUND);
    });
  });

  describe('OpenAPI document and Swagger UI', () => {
    let document: OpenApiDocument;
    const schema = (ref: string | undefined): SchemaObject => {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      return document.components.schemas[ref!.replace('#/components/schemas/', '')];
    };

    beforeAll(async () => {
      const response = await app.request<OpenApiDocument>('GET', '/api/docs-json');
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('application/json');
      document = JSON.parse(response.text) as OpenApiDocument;
    });

    it('is an OpenAPI 3 document of the whole HTTP API whose references all resolve', () => {
      expect(document.openapi).toMatch(/^3\./);
      expect(document.info.title).toBe('Snakepit sample app');
      expect(Object.keys(document.paths)).toEqual(
        expect.arrayContaining(['/api/execute', '/api/stream', '/api/sessions', '/api/sessions/{id}', '/api/pools', '/api/tools', '/api/pools/{pool}/restart']),
      );
      const refs = refsOf(document);
      expect(refs.length).toBeGreaterThan(10);
      for (const ref of refs) expect(schema(ref)).toBeDefined();
    });

    it('describes POST /api/execute: its JSON body, its answer and its errors', () => {
      const operation = document.paths['/api/execute'].post;
      const body = schema(operation.requestBody!.content['application/json'].schema.$ref);
      expect(body.required).toEqual(['tool']);
      expect(body.properties!.tool.type).toBe('string');
      expect(Object.keys(body.properties!)).toEqual(['tool', 'args', 'pool', 'sessionId', 'timeoutMs', 'idempotent']);
      expect(schema(operation.responses['200'].content!['application/json'].schema.$ref).required).toEqual(['result', 'workerId', 'pid', 'pool', 'durationMs']);
      for (const status of ['400', '404', '429', '500', '502', '503', '504']) {
        expect(operation.responses[status].content!['application/json'].schema.$ref).toBe('#/components/schemas/ErrorBodyDto');
      }
      const codes = schema('#/components/schemas/SnakepitErrorCode').enum;
      expect(codes).toEqual(expect.arrayContaining(['INVALID_ARGUMENTS', 'TOOL_NOT_FOUND', 'TIMEOUT']));
    });

    it('matches what the API really answers, for a result and for an error', async () => {
      const result = await app.execute('add', { a: 2, b: 3 });
      expect(result.status).toBe(200);
      expect(Object.keys(result.body).sort()).toEqual(Object.keys(schema('#/components/schemas/ExecuteResponseDto').properties!).sort());

      const failure = await app.request<SnakepitErrorBody>('POST', '/api/execute', { tool: '' });
      expect(failure.status).toBe(400);
      const errorBody = schema('#/components/schemas/ErrorBodyDto');
      const error = schema(errorBody.properties!.error.$ref ?? errorBody.properties!.error.allOf?.[0].$ref);
      expect(Object.keys(failure.body)).toEqual(['error']);
      expect(Object.keys(error.properties!)).toEqual(expect.arrayContaining(Object.keys(failure.body.error)));
      for (const field of error.required!) expect(failure.body.error).toHaveProperty(field);
      expect(failure.body.error.code).toBe('INVALID_ARGUMENTS');
    });

    it('serves Swagger UI as an HTML page with its assets', async () => {
      const page = await app.request('GET', '/api/docs');
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');
      expect(page.text).toContain('<title>Snakepit sample app API</title>');
      const bundle = await fetch(`${app.baseUrl}/api/docs/swagger-ui-bundle.js`);
      expect(bundle.status).toBe(200);
      expect(bundle.headers.get('content-type')).toContain('javascript');
      await bundle.arrayBuffer();
    });
  });
});
