import type { Logger } from '@nestjs/common';
import type { HostToolRegistry } from '../host-tools/host-tool.registry';
import type { ResolvedPoolOptions } from '../options/resolve-options';
import type { TelemetryService } from '../telemetry/telemetry.service';
import { Worker } from '../worker/worker';
import type { WorkerRuntime } from '../worker/worker-runtime';
import { frameLimitBytes } from '../bridge/frame-size';
import type { PoolWorker, WorkerExitListener, WorkerLauncher } from './pool-worker';

/** Starts real Python worker processes for one pool. */
export class ProcessLauncher implements WorkerLauncher {
  constructor(
    private readonly config: ResolvedPoolOptions,
    private readonly runtime: WorkerRuntime,
    private readonly telemetry: TelemetryService,
    private readonly logger: Logger,
    private readonly stopGraceMs: number,
    private readonly hostTools: HostToolRegistry,
  ) {}

  async launch(workerId: string, onExit: WorkerExitListener): Promise<PoolWorker> {
    const { config } = this;
    const worker = await Worker.start({
      workerId,
      pool: config.name,
      python: config.python,
      adapter: config.adapter,
      address: this.runtime.addressFor(workerId),
      capacity: config.capacityPerWorker,
      logLevel: config.logLevel,
      env: this.runtime.envFor(config, workerId),
      maxMessageBytes: frameLimitBytes(config.maxPayloadBytes),
      startTimeoutMs: config.startTimeoutMs,
      shutdownGraceMs: this.stopGraceMs,
      memoryLimitMb: config.memoryLimitMb,
      sharedMemory: this.runtime.sharedMemoryFor(config),
      token: this.runtime.token,
      logger: this.logger,
      registry: this.runtime,
      hostTools: this.hostTools,
      hostCallTimeoutMs: config.timeoutMs,
      heartbeat: {
        intervalMs: config.heartbeatIntervalMs,
        timeoutMs: config.heartbeatTimeoutMs,
        maxMissed: config.heartbeatMaxMissed,
        onMissed: (w, missed) => {
          this.telemetry.emit('worker.heartbeat_missed', { pool: config.name, workerId: w.id, pid: w.pid, missed, threshold: config.heartbeatMaxMissed });
          this.logger.warn({ msg: 'worker missed a heartbeat', pool: config.name, worker_id: w.id, pid: w.pid, missed, threshold: config.heartbeatMaxMissed });
        },
      },
      onExit,
    });
    this.telemetry.emit('worker.start', { pool: config.name, workerId, pid: worker.pid });
    return worker;
  }
}
