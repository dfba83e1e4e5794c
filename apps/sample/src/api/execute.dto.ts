import { ApiProperty, ApiPropertyOptional, type SchemaObject } from '@nestjs/swagger';
import type { ExecuteResult, SnakepitErrorCode } from '@snakepit/nestjs';

/**
 * The OpenAPI description of POST /api/execute and /api/stream. The body is
 * still checked by parseExecuteBody (structured INVALID_ARGUMENTS errors), not
 * by a validation pipe: these classes only describe it.
 */
export class ExecuteRequestDto {
  @ApiProperty({ description: "The tool's name, as GET /api/tools lists it", example: 'add' })
  tool: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: "The tool's keyword arguments (default {})", example: { a: 2, b: 3 } })
  args?: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'Pool to run on (default: the pool named default, else the first pool)', example: 'default' })
  pool?: string;

  @ApiPropertyOptional({ description: 'Run inside this session (POST /api/sessions): the tool sees and may change its state' })
  sessionId?: string;

  @ApiPropertyOptional({ description: "Budget of the whole call in ms, queue wait included (default: the pool's timeoutMs)", example: 5000 })
  timeoutMs?: number;

  @ApiPropertyOptional({ description: 'The tool is safe to run twice: retried once on another worker if its worker crashes mid-call', default: false })
  idempotent?: boolean;
}

/** Any JSON value: with a combinator @nestjs/swagger drops the `object` type it reflects from `unknown`. */
export const ANY_JSON_VALUE: Pick<SchemaObject, 'oneOf' | 'nullable'> = {
  oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'object' }, { type: 'array', items: {} }],
  nullable: true,
};

export class ExecuteResponseDto implements ExecuteResult {
  @ApiProperty({ ...ANY_JSON_VALUE, description: "The tool's return value, any JSON value", example: 5 })
  result: unknown;

  @ApiProperty({ example: 'default-1' })
  workerId: string;

  @ApiProperty({ type: 'integer', description: "The worker's process id", example: 4242 })
  pid: number;

  @ApiProperty({ example: 'default' })
  pool: string;

  @ApiProperty({ example: 1.7 })
  durationMs: number;
}

/** What a tool call can fail with (documented on both call routes). */
export const CALL_ERRORS = [
  'INVALID_ARGUMENTS',
  'TOOL_NOT_FOUND',
  'POOL_NOT_FOUND',
  'SESSION_NOT_FOUND',
  'SESSION_CONFLICT',
  'PAYLOAD_TOO_LARGE',
  'QUEUE_FULL',
  'PYTHON_EXCEPTION',
  'SERIALIZATION_ERROR',
  'HOST_EXCEPTION',
  'INTERNAL',
  'WORKER_CRASHED',
  'QUEUE_TIMEOUT',
  'WORKER_UNAVAILABLE',
  'RESOURCE_EXHAUSTED',
  'CIRCUIT_OPEN',
  'SHUTTING_DOWN',
  'TIMEOUT',
] as const satisfies readonly SnakepitErrorCode[];
