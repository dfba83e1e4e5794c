import { Module, type DynamicModule } from '@nestjs/common';
import { hostname } from 'node:os';
import { SnakepitModule } from '@snakepit/nestjs';
import { SnakepitMetricsModule } from '@snakepit/nestjs/metrics';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { LoggerModule } from 'nestjs-pino';
import { ExecuteController } from './api/execute.controller';
import { PoolsController } from './api/pools.controller';
import { SessionsController } from './api/sessions.controller';
import type { SampleConfig } from './config';
import { ERROR_BODY_OPTIONS } from './errors/app-exception.filter';
import { SnakepitGrpcController } from './grpc/snakepit.grpc-controller';
import { DirectoryHostTools } from './host-tools/directory.host-tools';
import { HealthModule } from './health/health.module';

@Module({})
export class AppModule {
  static register(config: SampleConfig): DynamicModule {
    // A debug line per call only when debug lines are kept anyway.
    const perCallLines = ['debug', 'trace'].includes(config.logLevel);
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot({
          // The per-request logger carries the request id into the per-call debug lines,
          // its one reader here. Only then is it installed: it and the AsyncLocalStorage
          // context behind it cost 100-150 µs of CPU per request on Node 20 (measured at
          // c=64, about a third of the app's cost per call), since every promise pays.
          forRoutes: perCallLines ? undefined : [],
          pinoHttp: {
            level: config.logLevel,
            // Requests are logged by the library's call events, not per HTTP hit.
            autoLogging: false,
            quietReqLogger: true,
            // Worker log lines carry the worker's `pid`; the host's own goes under another key.
            base: { host_pid: process.pid, hostname: hostname() },
          },
        }),
        SnakepitModule.forRoot({
          // Global, so the opt-in metrics and health modules reach its services.
          isGlobal: true,
          python: config.python,
          pools: config.pools,
          exposeTracebacks: config.exposeTracebacks,
          logCalls: perCallLines,
          ...config.lifecycle,
          cluster: config.cluster,
        }),
        // GET /metrics: Snakepit's metrics and Node's default process metrics.
        PrometheusModule.register(),
        SnakepitMetricsModule,
        HealthModule,
      ],
      controllers: [ExecuteController, SessionsController, PoolsController, SnakepitGrpcController],
      providers: [DirectoryHostTools, { provide: ERROR_BODY_OPTIONS, useValue: { exposeTracebacks: config.exposeTracebacks } }],
    };
  }
}
