import { SnakepitError, type ExecuteOptions } from '@snakepit/nestjs';
import { decodeHttpArgs } from './http-values';

/** The JSON body of POST /api/execute and POST /api/stream. */
export interface ExecuteBody {
  tool: string;
  args: Record<string, unknown>;
  options: Pick<ExecuteOptions, 'pool' | 'sessionId' | 'timeoutMs' | 'idempotent'>;
}

function invalid(message: string, field: string): SnakepitError {
  return new SnakepitError('INVALID_ARGUMENTS', message, { details: { field } });
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${field} must be a string`, field);
  return value;
}

/** Checks the body's shape and reads its arrays and bytes (http-values.ts); the library checks the values (tool name, timeout range, args). */
export function parseExecuteBody(body: unknown): ExecuteBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('The body must be a JSON object: { "tool", "args"?, "pool"?, "sessionId"?, "timeoutMs"?, "idempotent"? }', 'body');
  }
  const fields = body as Record<string, unknown>;
  if (typeof fields.tool !== 'string' || fields.tool.length === 0) throw invalid('tool must be a non-empty string', 'tool');
  const args = fields.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw invalid('args must be a JSON object', 'args');
  const timeoutMs = fields.timeoutMs;
  if (timeoutMs !== undefined && timeoutMs !== null && typeof timeoutMs !== 'number') throw invalid('timeoutMs must be a number', 'timeoutMs');
  if (fields.idempotent !== undefined && typeof fields.idempotent !== 'boolean') throw invalid('idempotent must be a boolean', 'idempotent');
  return {
    tool: fields.tool,
    args: decodeHttpArgs(args as Record<string, unknown>),
    options: {
      pool: optionalString(fields, 'pool'),
      sessionId: optionalString(fields, 'sessionId'),
      timeoutMs: typeof timeoutMs === 'number' ? timeoutMs : undefined,
      idempotent: fields.idempotent === true,
    },
  };
}

/** The query of POST /api/execute/:tool/binary: `?pool=` and `?timeoutMs=` (the body is the bytes). */
export function parseBinaryQuery(query: Record<string, unknown>): ExecuteBody['options'] {
  const timeoutMs = optionalString(query, 'timeoutMs');
  if (timeoutMs !== undefined && !/^\d+$/.test(timeoutMs)) throw invalid('timeoutMs must be a whole number of milliseconds', 'timeoutMs');
  return { pool: optionalString(query, 'pool'), timeoutMs: timeoutMs === undefined ? undefined : Number(timeoutMs) };
}
