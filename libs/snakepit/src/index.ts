export { SnakepitModule } from './snakepit.module';
export { SNAKEPIT_ASYNC_OPTIONS_TYPE, SNAKEPIT_MODULE_OPTIONS, SNAKEPIT_OPTIONS_TYPE } from './snakepit.module-definition';
export type { PoolOptions, SessionOptions, SnakepitModuleOptions } from './options/snakepit-options';
export { SnakepitConfigError, type ResolvedOptions, type ResolvedPoolOptions } from './options/resolve-options';
export { PROTO_LOADER_OPTIONS, locateProtoRoot } from './bridge/proto';
export { NdArray, type DtypeOf, type Float16ArrayLike, type NdArrayDataTypes, type NdArrayDtype, type TypedArray } from './bridge/ndarray';
export { DEFAULT_INHERITED_ENV } from './options/defaults';
export { SNAKEPIT_RESOLVED_OPTIONS } from './options/tokens';
export { PoolService } from './pool/pool.service';
export type { ExecuteOptions, ExecuteResult, PoolTools, StreamChunk, ToolInfo, ToolParameterInfo } from './pool/pool.service';
export type { PoolInfo } from './pool/pool.interfaces';
export { SNAKEPIT_REMOTE_POOLS, type RemotePools } from './pool/remote-pools';
export type { WorkerInfo, WorkerState } from './worker/worker';
export { SessionService, type CreateSessionOptions, type SessionInfo } from './session/session.service';
export { SESSION_STORE, type SessionDelta, type SessionRecord, type SessionStore } from './session/session-store';
export { InMemorySessionStore } from './session/in-memory-session.store';
export { TelemetryService } from './telemetry/telemetry.service';
export { TelemetryLogger } from './telemetry/telemetry-logger';
export { CallTracer, TRACER_NAME, type CallPlacement, type TracedCall } from './telemetry/call-tracer';
export type {
  TelemetryEvent,
  TelemetryEventMap,
  TelemetryEventName,
  TelemetryHandlers,
  WorkerCrashReason,
  WorkerRecycleReason,
} from './telemetry/telemetry-events';
export { ERROR_TABLE, type SnakepitErrorCode } from './errors/error-codes';
export { SnakepitError, type PythonExceptionInfo, type PythonExceptionLink, type SnakepitErrorBody } from './errors/snakepit-error';
export { SnakepitExceptionFilter, toGrpcStatus, type SnakepitExceptionFilterOptions, type SnakepitGrpcStatus } from './errors/snakepit-exception.filter';
// The `cluster` option's type; cluster mode's code is in `@snakepit/nestjs/cluster` and loads only when it is set.
export type { ClusterOptions } from './cluster/cluster-options';
export { HostTool, type HostToolContext, type HostToolOptions, type HostToolParameter } from './host-tools/host-tool.decorator';
