import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { PoolService, SessionService, type SessionInfo } from '@snakepit/nestjs';
import { map, type Observable } from 'rxjs';
import type { CreateSessionRequest__Output } from '../generated/snakepit/v1/CreateSessionRequest';
import type { DeleteSessionRequest__Output } from '../generated/snakepit/v1/DeleteSessionRequest';
import type { DeleteSessionResponse } from '../generated/snakepit/v1/DeleteSessionResponse';
import type { ExecuteRequest__Output } from '../generated/snakepit/v1/ExecuteRequest';
import type { ExecuteResponse } from '../generated/snakepit/v1/ExecuteResponse';
import type { GetSessionRequest__Output } from '../generated/snakepit/v1/GetSessionRequest';
import type { ListToolsRequest__Output } from '../generated/snakepit/v1/ListToolsRequest';
import type { ListToolsResponse } from '../generated/snakepit/v1/ListToolsResponse';
import type { Session } from '../generated/snakepit/v1/Session';
import type { StreamChunk } from '../generated/snakepit/v1/StreamChunk';
import { decodeGrpcArgs, encodeGrpcValue, parseJsonObject } from './grpc-values';

function callOptions(request: ExecuteRequest__Output) {
  return {
    pool: request.pool || undefined,
    sessionId: request.sessionId || undefined,
    timeoutMs: request.timeoutMs || undefined,
  };
}

function toSession(info: SessionInfo): Session {
  return {
    sessionId: info.sessionId,
    expiresAt: info.expiresAt,
    createdAt: info.createdAt,
    metadataJson: JSON.stringify(info.metadata),
    stateJson: JSON.stringify(info.state),
  };
}

/**
 * The public gRPC API (`snakepit.v1.Snakepit`), the same operations as the HTTP
 * API; arrays and bytes travel as blobs beside the JSON (grpc-values.ts).
 */
@Controller()
export class SnakepitGrpcController {
  constructor(
    private readonly pools: PoolService,
    private readonly sessions: SessionService,
  ) {}

  @GrpcMethod('Snakepit', 'Execute')
  async execute(request: ExecuteRequest__Output): Promise<ExecuteResponse> {
    const args = decodeGrpcArgs(request.argsJson, request.blobs);
    const out = await this.pools.execute(request.tool, args, callOptions(request));
    const result = encodeGrpcValue(out.result);
    return {
      resultJson: result.json,
      blobs: result.blobs,
      workerId: out.workerId,
      pid: out.pid,
      pool: out.pool,
      durationMs: out.durationMs,
    };
  }

  @GrpcMethod('Snakepit', 'ExecuteStream')
  executeStream(request: ExecuteRequest__Output): Observable<StreamChunk> {
    const args = decodeGrpcArgs(request.argsJson, request.blobs);
    return this.pools.executeStream(request.tool, args, callOptions(request)).pipe(
      map((chunk) => {
        const data = encodeGrpcValue(chunk.data);
        return { dataJson: data.json, blobs: data.blobs, seq: chunk.seq };
      }),
    );
  }

  @GrpcMethod('Snakepit', 'CreateSession')
  async createSession(request: CreateSessionRequest__Output): Promise<Session> {
    const metadata = parseJsonObject(request.metadataJson, 'metadata_json');
    return toSession(await this.sessions.create({ ttlSeconds: request.ttlSeconds || undefined, metadata }));
  }

  @GrpcMethod('Snakepit', 'GetSession')
  async getSession(request: GetSessionRequest__Output): Promise<Session> {
    return toSession(await this.sessions.get(request.sessionId));
  }

  @GrpcMethod('Snakepit', 'DeleteSession')
  async deleteSession(request: DeleteSessionRequest__Output): Promise<DeleteSessionResponse> {
    await this.sessions.delete(request.sessionId);
    return {};
  }

  @GrpcMethod('Snakepit', 'ListTools')
  listTools(request: ListToolsRequest__Output): ListToolsResponse {
    return {
      pools: this.pools.listTools(request.pool || undefined).map((entry) => ({
        pool: entry.pool,
        tools: entry.tools.map((tool) => ({
          name: tool.name,
          description: tool.description,
          streaming: tool.streaming,
          parametersJson: JSON.stringify(tool.parameters),
        })),
      })),
    };
  }
}
