import { SetMetadata } from '@nestjs/common';
import type { NdArrayDtype } from '../bridge/ndarray';

export const HOST_TOOL_METADATA = 'snakepit:host-tool';

/**
 * A parameter of a host tool, as Python tools see it (same vocabulary as Python
 * tool parameters). The registry checks the arguments against the declared
 * parameters before the method runs (INVALID_ARGUMENTS naming each one that
 * does not fit); undeclared arguments pass through unchecked.
 */
export interface HostToolParameter {
  name: string;
  /**
   * `ndarray`: a numpy array from Python, an NdArray here (a TypedArray other
   * than a Uint8Array also fits); `binary`: bytes from Python, a Buffer here.
   */
  type: 'integer' | 'number' | 'string' | 'boolean' | 'array' | 'object' | 'null' | 'any' | 'ndarray' | 'binary';
  required?: boolean;
  description?: string;
  /** For `ndarray`: the element type the array must have (any when left out). */
  dtype?: NdArrayDtype;
  /** For `ndarray`: the number of dimensions the array must have (any when left out). */
  ndim?: number;
}

export interface HostToolOptions {
  description?: string;
  parameters?: HostToolParameter[];
}

export interface HostToolMetadata extends HostToolOptions {
  name: string;
}

/** What a host tool receives besides its arguments. */
export interface HostToolContext {
  /** Aborted when the Python call that asked is cancelled, ends, or the host tool times out. */
  signal: AbortSignal;
  pool: string;
  workerId: string;
  /** The session of the Python call, if any. */
  sessionId?: string;
  /** Host-tool hops that led here (1 for a call straight from a Python tool). */
  depth: number;
}

/**
 * Exposes a provider method to Python tools as `ctx.call_host(name, args)`.
 * The method receives `(args, context)` and may be async; what it returns must
 * be JSON, with arrays (NdArray, TypedArray) and bytes (Buffer) at any depth.
 * A thrown error reaches Python as a `HostToolError`.
 *
 * ```ts
 * @HostTool('lookup_user', { description: 'A user by id', parameters: [{ name: 'id', type: 'integer', required: true }] })
 * async lookupUser({ id }: { id: number }) { return this.users.find(id); }
 * ```
 */
export const HostTool = (name: string, options: HostToolOptions = {}): MethodDecorator =>
  SetMetadata<string, HostToolMetadata>(HOST_TOOL_METADATA, { name, ...options });
