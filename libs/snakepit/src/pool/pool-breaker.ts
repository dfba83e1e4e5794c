import type { Logger } from '@nestjs/common';
import { CircuitState, SamplingBreaker, circuitBreaker, handleAll, isBrokenCircuitError, type CircuitBreakerPolicy } from 'cockatiel';
import { SnakepitError } from '../errors/snakepit-error';
import type { ResolvedPoolOptions } from '../options/resolve-options';
import type { TelemetryService } from '../telemetry/telemetry.service';
import type { PoolInfo } from './pool.interfaces';

/**
 * Outcomes that say the pool itself is broken: a worker died under the call
 * or its stream broke, or no worker could be started to take it. Load
 * shedding (QUEUE_FULL, QUEUE_TIMEOUT), a caller's own budget (TIMEOUT,
 * CANCELLED) and the tool's own errors say nothing about the pool: a hung
 * worker is found by the heartbeat and the cancel grace, and dies, which counts.
 */
const BREAKAGE = new Set(['WORKER_CRASHED', 'WORKER_UNAVAILABLE']);

const CIRCUIT_STATES: Record<CircuitState, PoolInfo['circuit']> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'open',
};

/** What a call produced, carried through the breaker so that only breakage counts as a failure. */
type Outcome<T> = { value: T } | { error: unknown };

/**
 * The pool's circuit breaker: cockatiel's SamplingBreaker opens on a failure
 * *rate* over a sliding window, and only above a minimum throughput, so a few
 * crashes at low traffic never fail everyone; after `resetTimeoutMs` one probe
 * call is let through. cockatiel is small, typed and dependency-free; opossum
 * would also fit but wraps functions rather than single calls.
 */
export class PoolBreaker {
  private readonly policy?: CircuitBreakerPolicy;

  constructor(
    private readonly config: ResolvedPoolOptions,
    telemetry: TelemetryService,
    logger: Logger,
  ) {
    const options = config.circuitBreaker;
    if (!options) return;
    this.policy = circuitBreaker(handleAll, {
      halfOpenAfter: options.resetTimeoutMs,
      breaker: new SamplingBreaker({ threshold: options.failureRate, duration: options.windowMs, minimumRps: options.minimumRps }),
    });
    const pool = config.name;
    this.policy.onBreak(() => {
      logger.warn({ msg: 'circuit opened: most calls found the pool broken; calls fail fast until a probe succeeds', pool });
      telemetry.emit('circuit.opened', { pool });
    });
    this.policy.onHalfOpen(() => telemetry.emit('circuit.half_open', { pool }));
    this.policy.onReset(() => {
      logger.log({ msg: 'circuit closed', pool });
      telemetry.emit('circuit.closed', { pool });
    });
  }

  get state(): PoolInfo['circuit'] {
    return this.policy ? CIRCUIT_STATES[this.policy.state] : 'closed';
  }

  /** Runs `fn` through the breaker; CIRCUIT_OPEN while it is open. */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.policy) return fn();
    // cockatiel makes calls wait for the half-open probe to finish; a caller's budget must not
    // depend on another call's, so while the probe runs everyone else fails fast.
    if (this.policy.state === CircuitState.HalfOpen) throw this.openError();
    let outcome: Outcome<T>;
    try {
      outcome = await this.policy.execute(async () => {
        try {
          return { value: await fn() };
        } catch (error) {
          if (error instanceof SnakepitError && BREAKAGE.has(error.code)) throw error;
          return { error };
        }
      });
    } catch (error) {
      if (!isBrokenCircuitError(error)) throw error;
      throw this.openError();
    }
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }

  private openError(): SnakepitError {
    const { resetTimeoutMs } = this.config.circuitBreaker || {};
    return new SnakepitError(
      'CIRCUIT_OPEN',
      `Pool ${this.config.name}: the circuit is open after most calls found the pool broken; calls fail fast until a probe succeeds`,
      {
        details: { pool: this.config.name, resetTimeoutMs },
      },
    );
  }
}
