import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { clusterProviders, sessionStoreProvider } from './cluster/cluster.providers';
import { HostToolRegistry } from './host-tools/host-tool.registry';
import { resolveOptions, type ResolvedOptions } from './options/resolve-options';
import type { SnakepitModuleOptions } from './options/snakepit-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from './options/tokens';
import { PoolService } from './pool/pool.service';
import { SessionService } from './session/session.service';
import { SESSION_STORE } from './session/session-store';
import { ConfigurableSnakepitModule, SNAKEPIT_MODULE_OPTIONS } from './snakepit.module-definition';
import { TelemetryLogger } from './telemetry/telemetry-logger';
import { TelemetryService } from './telemetry/telemetry.service';
import { WorkerRuntime } from './worker/worker-runtime';

/**
 * `SnakepitModule.forRoot({ pools: [...] })` or `forRootAsync({ useFactory, inject })`.
 * Options are validated once, at start, with every problem listed.
 */
@Module({
  // DiscoveryModule finds the application's @HostTool methods.
  imports: [DiscoveryModule],
  providers: [
    {
      provide: SNAKEPIT_RESOLVED_OPTIONS,
      inject: [SNAKEPIT_MODULE_OPTIONS],
      useFactory: (options: SnakepitModuleOptions) => resolveOptions(options),
    },
    {
      provide: WorkerRuntime,
      inject: [SNAKEPIT_RESOLVED_OPTIONS],
      useFactory: (options: ResolvedOptions) => new WorkerRuntime(options),
    },
    sessionStoreProvider,
    ...clusterProviders,
    TelemetryService,
    // Logs the lifecycle events the pool does not log itself (debug/info; quiet at info by default).
    TelemetryLogger,
    SessionService,
    HostToolRegistry,
    PoolService,
  ],
  exports: [PoolService, SessionService, TelemetryService, SESSION_STORE, SNAKEPIT_RESOLVED_OPTIONS],
})
export class SnakepitModule extends ConfigurableSnakepitModule {}
