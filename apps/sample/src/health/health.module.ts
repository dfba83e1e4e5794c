import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { SnakepitHealthModule } from '@snakepit/nestjs/health';
import { EventLoopHealthIndicator } from './event-loop.health';
import { GrpcHealthPublisher } from './grpc-health.publisher';
import { HealthController } from './health.controller';
import { Readiness } from './readiness';

/** GET /health/live, GET /health/ready, and the grpc.health.v1 status of the gRPC port. */
@Module({
  imports: [TerminusModule, SnakepitHealthModule],
  controllers: [HealthController],
  providers: [EventLoopHealthIndicator, Readiness, GrpcHealthPublisher],
  exports: [GrpcHealthPublisher],
})
export class HealthModule {}
