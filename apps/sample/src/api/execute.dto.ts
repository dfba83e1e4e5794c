import { ApiProperty, ApiPropertyOptional, getSchemaPath, type SchemaObject } from '@nestjs/swagger';
import type { ExecuteResult, NdArrayDtype, SnakepitErrorCode } from '@snakepit/nestjs';
import type { BytesJson, NdArrayJson } from './http-values';

/** Every dtype, checked complete against the library's union by the compiler. */
const DTYPES = Object.keys({
  bool: true,
  int8: true,
  int16: true,
  int32: true,
  int64: true,
  uint8: true,
  uint16: true,
  uint32: true,
  uint64: true,
  float16: true,
  float32: true,
  float64: true,
  complex64: true,
  complex128: true,
} satisfies Record<NdArrayDtype, true>);

export class NdArrayFieldsDto {
  @ApiProperty({ enum: DTYPES, enumName: 'NdArrayDtype', description: "numpy's element type", example: 'float32' })
  dtype: NdArrayDtype;

  @ApiProperty({ type: 'integer', isArray: true, description: 'Dimensions, outermost first (C order); [] for a 0-d array', example: [2, 2] })
  shape: number[];

  @ApiProperty({
    format: 'byte',
    description:
      'The elements, little-endian, C order, base64 (standard alphabet, padded); complex values as real and imaginary parts. Its length must be the product of shape times the element size',
    example: 'AACAPwAAAEAAAEBAAACAQA==',
  })
  data: string;
}

/**
 * An array in args, results and stream chunks: an object with this one key.
 * A tool parameter of type "ndarray" takes only this (a JSON list is refused).
 */
export class NdArrayJsonDto implements NdArrayJson {
  @ApiProperty({ type: NdArrayFieldsDto })
  $ndarray: NdArrayFieldsDto;
}

/** Bytes (Python bytes) in args, results and stream chunks: an object with this one key. */
export class BytesJsonDto implements BytesJson {
  @ApiProperty({ format: 'byte', description: 'The bytes, base64 (standard alphabet, padded)', example: 'aGVsbG8=' })
  $bytes: string;
}

const ARRAYS_AND_BYTES =
  'Arrays travel as `{"$ndarray": {"dtype", "shape", "data": base64}}` and bytes as `{"$bytes": base64}` at any depth (an object whose only key is `$ndarray` or `$bytes` is always read so).';

/**
 * The OpenAPI description of POST /api/execute and /api/stream. The body is
 * still checked by parseExecuteBody (structured INVALID_ARGUMENTS errors), not
 * by a validation pipe: these classes only describe it.
 */
export class ExecuteRequestDto {
  @ApiProperty({ description: "The tool's name, as GET /api/tools lists it", example: 'add' })
  tool: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { oneOf: [{ $ref: getSchemaPath(NdArrayJsonDto) }, { $ref: getSchemaPath(BytesJsonDto) }, {}] },
    description: `The tool's keyword arguments (default {}). ${ARRAYS_AND_BYTES}`,
    example: { a: 2, b: 3 },
  })
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
const JSON_TYPES: SchemaObject[] = [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'object' }, { type: 'array', items: {} }];
export const ANY_JSON_VALUE: Pick<SchemaObject, 'oneOf' | 'nullable'> = { oneOf: JSON_TYPES, nullable: true };

export class ExecuteResponseDto implements ExecuteResult {
  @ApiProperty({
    oneOf: [...JSON_TYPES, { $ref: getSchemaPath(NdArrayJsonDto) }, { $ref: getSchemaPath(BytesJsonDto) }],
    nullable: true,
    description: `The tool's return value, any JSON value. ${ARRAYS_AND_BYTES}`,
    example: 5,
  })
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
