import { dtypeOfTypedArray, isDtype, NdArray, type NdArrayDtype } from '../bridge/ndarray';
import { SnakepitError } from '../errors/snakepit-error';
import type { HostToolParameter } from './host-tool.decorator';

/** At most this many problems are listed in one error (as Python's argument check does). */
const MAX_REPORTED_ERRORS = 20;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One problem with one argument, in the shape Python tools report theirs (snakepit_bridge/schema.py). */
export interface ArgumentProblem {
  path: string;
  problem: 'missing' | 'wrong_type' | 'wrong_dtype' | 'wrong_ndim';
  expected: string;
  got?: string;
  hint?: string;
}

/** Why a declared parameter cannot stand, or undefined: checked once, when the host tools are found. */
export function parameterProblem(parameter: HostToolParameter): string | undefined {
  if (parameter.dtype !== undefined && parameter.type !== 'ndarray') return `dtype is for "ndarray" parameters, ${parameter.name} is "${parameter.type}"`;
  if (parameter.ndim !== undefined && parameter.type !== 'ndarray') return `ndim is for "ndarray" parameters, ${parameter.name} is "${parameter.type}"`;
  if (parameter.dtype !== undefined && !isDtype(parameter.dtype))
    return `${parameter.name} declares dtype ${JSON.stringify(parameter.dtype)}, not one that travels`;
  if (parameter.ndim !== undefined && (!Number.isSafeInteger(parameter.ndim) || parameter.ndim < 1)) {
    return `${parameter.name} declares ndim ${String(parameter.ndim)}: a positive integer, or leave it out for any`;
  }
  return undefined;
}

/**
 * Throws INVALID_ARGUMENTS listing every declared parameter that is missing or
 * of the wrong type in `args`. Undeclared arguments pass through, and a
 * parameter that is not required may be absent or null.
 */
export function validateHostToolArguments(tool: string, parameters: readonly HostToolParameter[], args: Record<string, unknown>): void {
  const errors: ArgumentProblem[] = [];
  for (const parameter of parameters) {
    if (errors.length >= MAX_REPORTED_ERRORS) break;
    const path = pathOf(parameter.name);
    const value = Object.hasOwn(args, parameter.name) ? args[parameter.name] : undefined;
    if (value === undefined || (value === null && !parameter.required && parameter.type !== 'null')) {
      if (parameter.required) errors.push({ path, problem: 'missing', expected: expectedOf(parameter) });
      continue;
    }
    errors.push(...problemsOf(parameter, value, path));
  }
  if (errors.length === 0) return;
  const summary = errors.slice(0, 3).map(describe).join('; ');
  const more = errors.length > 3 ? ` (and ${errors.length - 3} more)` : '';
  throw new SnakepitError('INVALID_ARGUMENTS', `invalid arguments for host tool ${tool}: ${summary}${more}`, {
    details: { tool, errors, parameters: parameters.map((p) => p.name) },
  });
}

function problemsOf(parameter: HostToolParameter, value: unknown, path: string): ArgumentProblem[] {
  const expected = expectedOf(parameter);
  if (parameter.type === 'ndarray') {
    const array = arrayOf(value);
    if (!array) {
      const hint = 'send a numpy array (Python) or an NdArray / TypedArray; lists and numbers are not arrays';
      return [{ path, problem: 'wrong_type', expected, got: typeName(value), hint }];
    }
    const problems: ArgumentProblem[] = [];
    if (parameter.dtype && array.dtype !== parameter.dtype) problems.push({ path, problem: 'wrong_dtype', expected: parameter.dtype, got: array.dtype });
    if (parameter.ndim && array.ndim !== parameter.ndim)
      problems.push({ path, problem: 'wrong_ndim', expected: `${parameter.ndim}-d`, got: `${array.ndim}-d` });
    return problems;
  }
  return accepts(parameter.type, value) ? [] : [{ path, problem: 'wrong_type', expected, got: typeName(value) }];
}

/** The dtype and dimensions of an array argument: an NdArray, or a TypedArray other than a Uint8Array (bytes). */
function arrayOf(value: unknown): { dtype: NdArrayDtype; ndim: number } | undefined {
  if (value instanceof NdArray) return { dtype: (value as NdArray).dtype, ndim: (value as NdArray).ndim };
  const dtype = dtypeOfTypedArray(value);
  return dtype ? { dtype, ndim: 1 } : undefined;
}

function accepts(type: HostToolParameter['type'], value: unknown): boolean {
  switch (type) {
    case 'any':
      return true;
    case 'null':
      return value === null;
    case 'integer':
      return typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value));
    case 'number':
      return typeof value === 'bigint' || typeof value === 'number';
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'binary':
      // Bytes from Python arrive as a Buffer; a Uint8Array is bytes on the host too (NdArray's rule).
      return value instanceof Uint8Array;
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) && !(value instanceof NdArray);
    case 'ndarray':
      return arrayOf(value) !== undefined;
  }
}

/** How a value reads in an error, in the type vocabulary of tool parameters. */
function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof NdArray) return `ndarray[${(value as NdArray).dtype}]`;
  if (value instanceof Uint8Array) return 'binary';
  const dtype = dtypeOfTypedArray(value);
  if (dtype) return `ndarray[${dtype}]`;
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  if (typeof value === 'bigint') return 'integer';
  return typeof value;
}

/** `ndarray[float32, 2-d]`, `binary`, `integer`: the declared type as an error shows it. */
function expectedOf(parameter: HostToolParameter): string {
  if (parameter.type !== 'ndarray' || (!parameter.dtype && !parameter.ndim)) return parameter.type;
  return `ndarray[${[parameter.dtype, parameter.ndim ? `${parameter.ndim}-d` : ''].filter(Boolean).join(', ')}]`;
}

function pathOf(name: string): string {
  return IDENTIFIER.test(name) ? `$.${name}` : `$[${JSON.stringify(name)}]`;
}

function describe(error: ArgumentProblem): string {
  switch (error.problem) {
    case 'missing':
      return `${error.path} is required (${error.expected})`;
    case 'wrong_dtype':
      return `${error.path} must be an array of dtype ${error.expected}, got ${error.got}`;
    case 'wrong_ndim':
      return `${error.path} must be a ${error.expected} array, got ${error.got}`;
    case 'wrong_type':
      return `${error.path} must be ${error.expected}, got ${error.got}${error.hint ? ` (${error.hint})` : ''}`;
  }
}
