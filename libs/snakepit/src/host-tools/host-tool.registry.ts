import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { ToolSpec } from '../bridge/generated/snakepit/bridge/v1/ToolSpec';
import { SnakepitError } from '../errors/snakepit-error';
import { MAX_TIMER_MS, type ResolvedOptions } from '../options/resolve-options';
import { SNAKEPIT_RESOLVED_OPTIONS } from '../options/tokens';
import { runAtHostCallDepth } from './call-depth';
import { parameterProblem, validateHostToolArguments } from './host-tool-arguments';
import { HOST_TOOL_METADATA, type HostToolContext, type HostToolMetadata } from './host-tool.decorator';
import { SnakepitLogger } from '../logging/snakepit-logger';

type HostToolHandler = (args: Record<string, unknown>, context: HostToolContext) => unknown;

interface RegisteredHostTool {
  metadata: HostToolMetadata;
  handler: HostToolHandler;
  owner: string;
}

export interface HostToolInvocation {
  tool: string;
  args: Record<string, unknown>;
  timeoutMs: number;
  context: Omit<HostToolContext, 'signal'>;
  /** Aborted when the Python call that asked ends first. */
  signal: AbortSignal;
}

/**
 * Finds every `@HostTool` method of the application's providers at start
 * (Nest's DiscoveryService) and runs them for Python tools, with a timeout,
 * cancellation and a bound on host <-> Python recursion.
 */
@Injectable()
export class HostToolRegistry implements OnModuleInit {
  private readonly logger = new SnakepitLogger('Snakepit');
  private readonly tools = new Map<string, RegisteredHostTool>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(SNAKEPIT_RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') continue;
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const fn = (instance as Record<string, unknown>)[method];
        if (typeof fn !== 'function') continue;
        const metadata = this.reflector.get<HostToolMetadata | undefined>(HOST_TOOL_METADATA, fn);
        if (!metadata) continue;
        const owner = `${wrapper.name}.${method}`;
        const existing = this.tools.get(metadata.name);
        if (existing) throw new Error(`Host tool ${JSON.stringify(metadata.name)} is defined twice: ${existing.owner} and ${owner}`);
        for (const parameter of metadata.parameters ?? []) {
          const problem = parameterProblem(parameter);
          if (problem) throw new Error(`Host tool ${JSON.stringify(metadata.name)} (${owner}): ${problem}`);
        }
        this.tools.set(metadata.name, { metadata, handler: (fn as HostToolHandler).bind(instance), owner });
      }
    }
    if (this.tools.size > 0) this.logger.log({ msg: 'host tools exposed to Python', host_tools: [...this.tools.keys()].join(',') });
  }

  /** The host tools as workers are told about them. */
  specs(): ToolSpec[] {
    return [...this.tools.values()].map(({ metadata }) => ({
      name: metadata.name,
      description: metadata.description ?? '',
      streaming: false,
      idempotent: false,
      parameters: (metadata.parameters ?? []).map((p) => ({
        name: p.name,
        type: p.type,
        required: p.required ?? false,
        description: p.description ?? '',
        dtype: p.dtype ?? '',
        ndim: p.ndim ?? 0,
      })),
    }));
  }

  /** Runs one host tool for a Python tool; rejects with a SnakepitError. */
  async invoke({ tool, args, timeoutMs, context, signal }: HostToolInvocation): Promise<unknown> {
    const registered = this.tools.get(tool);
    if (!registered) {
      throw new SnakepitError('TOOL_NOT_FOUND', `The host has no tool ${JSON.stringify(tool)}`, {
        details: { tool, available: [...this.tools.keys()] },
      });
    }
    if (context.depth > this.options.maxHostCallDepth) {
      throw new SnakepitError(
        'RESOURCE_EXHAUSTED',
        `Host tool ${tool} called at depth ${context.depth}: Python <-> host recursion is limited to ${this.options.maxHostCallDepth}`,
        {
          details: { tool, depth: context.depth, maxHostCallDepth: this.options.maxHostCallDepth },
        },
      );
    }
    validateHostToolArguments(tool, registered.metadata.parameters ?? [], args);
    // A longer budget would fire at once (Node runs timers over MAX_TIMER_MS after 1 ms). Clamping changes
    // nothing else: the Python call that asked has a budget within MAX_TIMER_MS, and its end aborts this one.
    const budgetMs = Math.min(timeoutMs, MAX_TIMER_MS);
    const aborted = new AbortController();
    const onAbort = () => aborted.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        runAtHostCallDepth(context.depth, () => Promise.resolve(registered.handler(args, { ...context, signal: aborted.signal }))),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            // Rejected before the abort: a handler that rejects at once on its signal must not win the race.
            reject(new SnakepitError('TIMEOUT', `Host tool ${tool} did not finish within ${budgetMs} ms`, { details: { tool, timeoutMs: budgetMs } }));
            aborted.abort(new Error('timeout'));
          }, budgetMs);
        }),
      ]);
    } catch (error) {
      throw toHostError(tool, error);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/** A host tool's failure, described for Python: Nest HttpExceptions keep their type and status. */
function toHostError(tool: string, error: unknown): SnakepitError {
  if (error instanceof SnakepitError) return error;
  const hostType = error instanceof Error ? error.constructor.name : typeof error;
  const status = typeof (error as { getStatus?: unknown })?.getStatus === 'function' ? (error as { getStatus(): number }).getStatus() : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return new SnakepitError('HOST_EXCEPTION', message, { details: { tool, hostType, ...(status ? { status } : {}) }, cause: error });
}
