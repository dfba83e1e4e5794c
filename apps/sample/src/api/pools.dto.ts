import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { PoolInfo, PoolTools, ToolInfo, ToolParameterInfo, WorkerInfo, WorkerState } from '@snakepit/nestjs';
import { ANY_JSON_VALUE } from './execute.dto';

/*
 * The OpenAPI description of the pool and tool routes' answers. The classes
 * implement the library's types; the enums are checked against its unions.
 */

/** Every value of a string union, checked complete by the compiler. */
const valuesOf = <T extends string>(all: Record<T, true>): T[] => Object.keys(all) as T[];

const WORKER_STATES = valuesOf<WorkerState>({ starting: true, ready: true, draining: true, stopping: true, stopped: true, crashed: true });
const CIRCUIT_STATES = valuesOf<PoolInfo['circuit']>({ closed: true, open: true, half_open: true });

export class WorkerInfoDto implements WorkerInfo {
  @ApiProperty({ example: 'default-1' })
  id: string;

  @ApiProperty({ type: 'integer', example: 4242 })
  pid: number;

  @ApiProperty({ enum: WORKER_STATES, enumName: 'WorkerState', description: 'draining: being recycled, finishing its calls' })
  state: WorkerState;

  @ApiProperty({ type: 'integer', description: 'Calls running on it now' })
  busy: number;

  @ApiProperty({ type: 'integer', description: 'Calls it runs at once' })
  capacity: number;

  @ApiProperty({ type: 'integer' })
  requestsServed: number;

  @ApiProperty()
  uptimeMs: number;

  @ApiProperty({ type: 'integer', description: 'Bytes of its shared-memory region held by its calls in flight' })
  sharedMemoryBytes: number;
}

export class PoolInfoDto implements PoolInfo {
  @ApiProperty({ example: 'default' })
  name: string;

  @ApiProperty({ type: 'integer', description: 'Workers the pool keeps' })
  size: number;

  @ApiProperty({ type: 'integer' })
  ready: number;

  @ApiProperty({ type: 'integer', description: 'Free call slots across ready workers' })
  available: number;

  @ApiProperty({ type: 'integer', description: 'Workers running at least one call' })
  busy: number;

  @ApiProperty({ type: 'integer' })
  queueDepth: number;

  @ApiProperty({ type: 'integer' })
  starting: number;

  @ApiProperty({ description: 'Failed starts keep coming: restarts slow to one per cooldown and the pool is unhealthy' })
  crashLooping: boolean;

  @ApiProperty({ enum: CIRCUIT_STATES, enumName: 'CircuitState' })
  circuit: PoolInfo['circuit'];

  @ApiProperty({ type: [WorkerInfoDto] })
  workers: WorkerInfoDto[];
}

export class PoolListDto {
  @ApiProperty({ type: [PoolInfoDto] })
  pools: PoolInfoDto[];
}

export class ToolParameterDto implements ToolParameterInfo {
  @ApiProperty({ example: 'a' })
  name: string;

  @ApiProperty({ description: 'JSON type of the argument; "ndarray" takes an `$ndarray` object, "binary" a `$bytes` one', example: 'number' })
  type: string;

  @ApiProperty()
  required: boolean;

  @ApiProperty()
  nullable: boolean;

  @ApiProperty()
  description: string;

  @ApiPropertyOptional({ description: 'Element type of an array argument' })
  items?: string;

  @ApiPropertyOptional({ ...ANY_JSON_VALUE, description: 'Default value when the argument is left out' })
  default?: unknown;

  @ApiPropertyOptional({ description: 'For an "ndarray" argument: the element type it must have', example: 'float32' })
  dtype?: string;

  @ApiPropertyOptional({ type: 'integer', description: 'For an "ndarray" argument: the number of dimensions it must have' })
  ndim?: number;
}

export class ToolInfoDto implements ToolInfo {
  @ApiProperty({ example: 'add' })
  name: string;

  @ApiProperty()
  description: string;

  @ApiProperty({ description: 'Call it through POST /api/stream' })
  streaming: boolean;

  @ApiProperty({ description: 'Safe to retry after a worker crash' })
  idempotent: boolean;

  @ApiProperty({ type: [ToolParameterDto] })
  parameters: ToolParameterDto[];
}

export class PoolToolsDto implements PoolTools {
  @ApiProperty({ example: 'default' })
  pool: string;

  @ApiProperty({ type: [ToolInfoDto] })
  tools: ToolInfoDto[];

  @ApiPropertyOptional({ type: [String], description: 'In a cluster: the nodes that serve this pool' })
  nodes?: string[];
}

export class ToolListDto {
  @ApiProperty({ type: [PoolToolsDto] })
  pools: PoolToolsDto[];
}

export class ReplacedCountDto {
  @ApiProperty({ type: 'integer', description: 'Workers replaced' })
  replaced: number;
}

export class ReplacedFlagDto {
  @ApiProperty({ description: 'False when it could not be recycled now (not ready, already being recycled, pool closing)' })
  replaced: boolean;
}
