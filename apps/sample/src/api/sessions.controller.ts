import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBody, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { SessionService, SnakepitError, type SessionInfo } from '@snakepit/nestjs';
import { ApiErrors } from './error-body.dto';
import { CreateSessionDto, SessionDto } from './sessions.dto';

@ApiTags('sessions')
@Controller('api/sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a session: state that the tools of calls made in it share' })
  @ApiBody({ type: CreateSessionDto, required: false })
  @ApiCreatedResponse({ type: SessionDto })
  @ApiErrors('INVALID_ARGUMENTS', 'PAYLOAD_TOO_LARGE')
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
  @ApiOperation({ summary: 'A live session with its state' })
  @ApiParam({ name: 'id', description: 'The sessionId' })
  @ApiOkResponse({ type: SessionDto })
  @ApiErrors('SESSION_NOT_FOUND')
  get(@Param('id') id: string): Promise<SessionInfo> {
    return this.sessions.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'End a session' })
  @ApiParam({ name: 'id', description: 'The sessionId' })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiErrors('SESSION_NOT_FOUND')
  async remove(@Param('id') id: string): Promise<void> {
    await this.sessions.delete(id);
  }
}
