import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Transport, type GrpcOptions } from '@nestjs/microservices';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { locateProtoRoot, PROTO_LOADER_OPTIONS } from '@snakepit/nestjs';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { Logger } from 'nestjs-pino';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileDescriptorProto, type IDescriptorProto, type IFileDescriptorProto } from 'protobufjs/ext/descriptor';
import { AppModule } from './app.module';
import { REPO_ROOT, type SampleConfig } from './config';
import { AppExceptionFilter } from './errors/app-exception.filter';
import { GrpcHealthPublisher } from './health/grpc-health.publisher';

const SNAKEPIT_PROTO = join('snakepit', 'v1', 'snakepit.proto');

/**
 * Builds and starts the sample app: HTTP on host:port, the public gRPC API
 * (`snakepit.v1.Snakepit`) and `grpc.health.v1.Health` on grpcHost:grpcPort.
 *
 * What a Nest user looks for is there too: the HTTP API's OpenAPI document
 * at /api/docs-json with Swagger UI at /api/docs, and gRPC server reflection
 * (grpcurl and other clients work without the .proto files).
 *
 * HTTP runs on Fastify rather than Express: in the HTTP benchmark Express's
 * router, body-parser and reply path made up most of the host's CPU per call,
 * and the sample app on Fastify needs about half the CPU per call it did.
 */
export async function createApp(config: SampleConfig): Promise<INestApplication> {
  // Bodies over the limit, malformed JSON and unsupported media types fail in Fastify's
  // parser; AppExceptionFilter answers them in the API's error shape.
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    // Fastify answers 414 to a path parameter over 100 characters; a long unknown id is a 404 like any other.
    routerOptions: { maxParamLength: 16 * 1024 },
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.register(config), adapter, { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.useGlobalFilters(new AppExceptionFilter({ exposeTracebacks: config.exposeTracebacks, bodyLimitBytes: config.bodyLimitBytes }, app.getHttpAdapter()));

  const health = app.get(GrpcHealthPublisher);
  app.connectMicroservice<GrpcOptions>(
    {
      transport: Transport.GRPC,
      options: {
        package: 'snakepit.v1',
        protoPath: SNAKEPIT_PROTO,
        loader: { ...PROTO_LOADER_OPTIONS, includeDirs: [locateProtoRoot()] },
        url: `${config.grpcHost}:${config.grpcPort}`,
        // grpc-js takes 4 MiB by default: too little for the arrays the API carries as blobs.
        maxReceiveMessageLength: config.grpcMaxMessageBytes,
        maxSendMessageLength: config.grpcMaxMessageBytes,
        gracefulShutdown: true,
        onLoadPackageDefinition: (_definition: unknown, server: Parameters<GrpcHealthPublisher['addToServer']>[0]) => {
          health.addToServer(server);
          reflectionService().addToServer(server);
        },
      },
    },
    { inheritAppConfig: true },
  );
  serveApiDocs(app);
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(config.port, config.host);
  await health.start();
  return app;
}

/**
 * The OpenAPI 3 document of the HTTP API, built by @nestjs/swagger from the
 * controllers' decorators and the DTO classes in api/ on its first request,
 * and Swagger UI over it (served from swagger-ui-dist through @fastify/static,
 * which @nestjs/swagger needs on Fastify).
 */
function serveApiDocs(app: NestFastifyApplication): void {
  const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  const config = new DocumentBuilder()
    .setTitle('Snakepit sample app')
    .setDescription(
      'Python tools run by supervised worker pools. Every error answers the same body: `{ error: { code, numericCode, message, details, python? } }`.',
    )
    .setVersion(version)
    .build();
  SwaggerModule.setup('api/docs', app, () => SwaggerModule.createDocument(app, config), {
    jsonDocumentUrl: 'api/docs-json',
    customSiteTitle: 'Snakepit sample app API',
  });
}

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha, served by grpc-node's
 * @grpc/reflection) for the public API and grpc.health.v1, so grpcurl, grpcui
 * or Postman work without the .proto files. Its descriptors are loaded with the
 * .proto's own field names (keepCase): the Nest server's camelCase ones would
 * make clients ask for `argsJson` instead of `args_json`.
 */
function reflectionService(): ReflectionService {
  const options = { ...PROTO_LOADER_OPTIONS, keepCase: true };
  const definition = { ...loadSync(SNAKEPIT_PROTO, { ...options, includeDirs: [locateProtoRoot()] }), ...loadSync(healthProtoPath, options) };
  return new ReflectionService(withProtocMapEntryNames(definition));
}

/**
 * protobufjs 7 (under proto-loader) names a map field's entry type after the
 * field (`Statuses`) where protoc says `StatusesEntry`, and Go's protobuf
 * rejects the whole file for it, so grpcurl could not describe or call
 * grpc.health.v1.Health (fullstorydev/grpcurl#519). Renames the entries the
 * protoc way, in place: the definition is loaded for reflection only. Message
 * and enum types carry the files (a service's entries are its methods), as
 * @grpc/reflection reads them; one file's encoding is shared by all the types
 * of a definition, so each is fixed once.
 */
function withProtocMapEntryNames(definition: PackageDefinition): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>();
  for (const type of Object.values(definition) as Array<{ fileDescriptorProtos?: unknown }>) {
    if (!Array.isArray(type.fileDescriptorProtos)) continue;
    type.fileDescriptorProtos = (type.fileDescriptorProtos as Buffer[]).map((file) => {
      let result = fixed.get(file);
      if (!result) fixed.set(file, (result = renameMapEntries(file)));
      return result;
    });
  }
  return definition;
}

function renameMapEntries(file: Buffer): Buffer {
  const proto = FileDescriptorProto.decode(file) as unknown as IFileDescriptorProto;
  const visit = (message: IDescriptorProto): void => {
    for (const nested of message.nestedType ?? []) {
      visit(nested);
      const field = nested.options?.mapEntry ? message.field?.find((candidate) => candidate.typeName === nested.name) : undefined;
      // protoc: the field name in UpperCamelCase, then `Entry`.
      if (field?.name) nested.name = field.typeName = `${field.name.replace(/(?:^|_)(.)/g, (_match, letter: string) => letter.toUpperCase())}Entry`;
    }
  };
  proto.messageType?.forEach(visit);
  return Buffer.from(FileDescriptorProto.encode(proto).finish());
}
