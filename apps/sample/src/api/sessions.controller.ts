import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { SessionService, SnakepitError, type SessionInfo } from '@snakepit/nestjs';

@Controller('api/sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionService) {}

  @Post()
  @HttpCode(201)
  create(@Body() body: unknown): Promise<SessionInfo> {
    const fields = (body ?? {}) as Record<string, unknown>;
    if (typeof fields !== 'object' || Array.isArray(fields)) {
      throw new SnakepitError('INVALID_ARGUMENTS', 'The body must be a JSON object: { "ttlSeconds"?, "metadata"? }');
    }
    return this.sessions.create({
      ttlSeconds: fields.ttlSeconds as number | undefined,
      metadata: fields.metadata as Record<string, unknown> | undefined,
    });
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<SessionInfo> {
    return this.sessions.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@Param('id') id: string): Promise<void> {
    await this.sessions.delete(id);
  }
}
