import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { CreateSessionOptions, SessionInfo } from '@snakepit/nestjs';

/** The OpenAPI description of the session routes (the values are checked by SessionService). */
export class CreateSessionDto implements CreateSessionOptions {
  @ApiPropertyOptional({
    description: "Lifetime in seconds, 1 to the module's sessions.maxTtlSeconds (default: sessions.defaultTtlSeconds)",
    type: 'integer',
    example: 600,
  })
  ttlSeconds?: number;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Any JSON object, returned with the session', example: { user: 'u1' } })
  metadata?: Record<string, unknown>;
}

export class SessionDto implements SessionInfo {
  @ApiProperty({ example: 'sess_0b6c1f5e-2d7a-4c3e-9a61-5f0e8d2b7c44' })
  sessionId: string;

  @ApiProperty({ format: 'date-time' })
  createdAt: string;

  @ApiProperty({ format: 'date-time' })
  expiresAt: string;

  @ApiProperty({ type: 'integer' })
  ttlSeconds: number;

  @ApiProperty({ type: 'object', additionalProperties: true })
  metadata: Record<string, unknown>;

  @ApiProperty({ type: 'object', additionalProperties: true, description: "The tools' state: key -> JSON value" })
  state: Record<string, unknown>;

  @ApiProperty({ type: 'integer', description: 'Incremented by every committed change' })
  version: number;

  @ApiPropertyOptional({ description: 'The worker that last ran a call in the session' })
  lastWorkerId?: string;
}
