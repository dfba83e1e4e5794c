import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Transport, type GrpcOptions } from '@nestjs/microservices';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { locateProtoRoot, PROTO_LOADER_OPTIONS } from '@snakepit/nestjs';
import { Logger } from 'nestjs-pino';
import { join } from 'node:path';
import { AppModule } from './app.module';
import type { SampleConfig } from './config';
import { AppExceptionFilter } from './errors/app-exception.filter';
import { GrpcHealthPublisher } from './health/grpc-health.publisher';

/**
 * Builds and starts the sample app: HTTP on host:port, the public gRPC API
 * (`snakepit.v1.Snakepit`) and `grpc.health.v1.Health` on grpcHost:grpcPort.
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
        protoPath: join('snakepit', 'v1', 'snakepit.proto'),
        loader: { ...PROTO_LOADER_OPTIONS, includeDirs: [locateProtoRoot()] },
        url: `${config.grpcHost}:${config.grpcPort}`,
        gracefulShutdown: true,
        onLoadPackageDefinition: (_definition: unknown, server: unknown) => health.addToServer(server as Parameters<GrpcHealthPublisher['addToServer']>[0]),
      },
    },
    { inheritAppConfig: true },
  );
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(config.port, config.host);
  await health.start();
  return app;
}
