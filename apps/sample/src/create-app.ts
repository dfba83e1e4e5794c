import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Transport, type GrpcOptions } from '@nestjs/microservices';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { locateProtoRoot, PROTO_LOADER_OPTIONS, SnakepitError } from '@snakepit/nestjs';
import { json, type NextFunction, type Request, type Response } from 'express';
import { Logger } from 'nestjs-pino';
import { join } from 'node:path';
import { AppModule } from './app.module';
import type { SampleConfig } from './config';
import { AppExceptionFilter } from './errors/app-exception.filter';
import { GrpcHealthPublisher } from './health/grpc-health.publisher';

/** body-parser's failures, answered in the API's error shape instead of Express's HTML. */
function bodyErrors(limitBytes: number, exposeTracebacks: boolean) {
  return (error: { type?: string; status?: number; message?: string }, _req: Request, res: Response, next: NextFunction) => {
    let failure: SnakepitError | undefined;
    if (error.type === 'entity.too.large') {
      failure = new SnakepitError('PAYLOAD_TOO_LARGE', `The request body exceeds ${limitBytes} bytes`, { details: { limitBytes } });
    } else if (error.type === 'entity.parse.failed') {
      failure = new SnakepitError('INVALID_ARGUMENTS', `The request body is not valid JSON: ${error.message}`, { details: { field: 'body' } });
    } else if (error.status && error.status >= 400 && error.status < 500) {
      failure = new SnakepitError('INVALID_ARGUMENTS', error.message ?? 'Bad request', { details: { field: 'body' } });
    }
    if (!failure) return next(error);
    res.status(failure.httpStatus).json(failure.toBody({ exposeTracebacks }));
  };
}

/**
 * Builds and starts the sample app: HTTP on host:port, the public gRPC API
 * (`snakepit.v1.Snakepit`) and `grpc.health.v1.Health` on grpcHost:grpcPort.
 */
export async function createApp(config: SampleConfig): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config), { bufferLogs: true, bodyParser: false });
  app.useLogger(app.get(Logger));
  app.use(json({ limit: config.bodyLimitBytes }));
  app.use(bodyErrors(config.bodyLimitBytes, config.exposeTracebacks));
  app.useGlobalFilters(new AppExceptionFilter({ exposeTracebacks: config.exposeTracebacks }));

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

