import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { PoolService, type PoolInfo, type PoolTools } from '@snakepit/nestjs';
import { ApiErrors } from './error-body.dto';
import { PoolListDto, ReplacedCountDto, ReplacedFlagDto, ToolListDto } from './pools.dto';

@ApiTags('pools')
@Controller('api')
export class PoolsController {
  constructor(private readonly pools: PoolService) {}

  @Get('pools')
  @ApiOperation({ summary: 'Pools with their workers, queue and circuit state' })
  @ApiOkResponse({ type: PoolListDto })
  list(): { pools: PoolInfo[] } {
    return { pools: this.pools.poolInfo() };
  }

  @Get('tools')
  @ApiOperation({ summary: "Each pool's tools with their parameters" })
  @ApiOkResponse({ type: ToolListDto })
  tools(): { pools: PoolTools[] } {
    return { pools: this.pools.listTools() };
  }

  /** Rolling restart: every worker replaced one by one, no call failed (for code upgrades). */
  @Post('pools/:pool/restart')
  @HttpCode(200)
  @ApiOperation({ summary: 'Rolling restart: every worker replaced one by one' })
  @ApiParam({ name: 'pool', example: 'default' })
  @ApiOkResponse({ type: ReplacedCountDto })
  @ApiErrors('POOL_NOT_FOUND')
  async restart(@Param('pool') pool: string): Promise<{ replaced: number }> {
    return { replaced: await this.pools.rollingRestart(pool) };
  }

  /** Recycles every worker of the pool at once, each draining its calls first. */
  @Post('pools/:pool/recycle')
  @HttpCode(200)
  @ApiOperation({ summary: 'Recycle every worker at once, each draining its calls first' })
  @ApiParam({ name: 'pool', example: 'default' })
  @ApiOkResponse({ type: ReplacedCountDto })
  @ApiErrors('POOL_NOT_FOUND')
  async recycleAll(@Param('pool') pool: string): Promise<{ replaced: number }> {
    return { replaced: await this.pools.recycleAll(pool) };
  }

  @Post('pools/:pool/workers/:workerId/recycle')
  @HttpCode(200)
  @ApiOperation({ summary: 'Recycle one worker: a replacement starts, then it finishes its calls and stops' })
  @ApiParam({ name: 'pool', example: 'default' })
  @ApiParam({ name: 'workerId', example: 'default-1' })
  @ApiOkResponse({ type: ReplacedFlagDto })
  @ApiErrors('POOL_NOT_FOUND', 'WORKER_UNAVAILABLE')
  async recycleWorker(@Param('pool') pool: string, @Param('workerId') workerId: string): Promise<{ replaced: boolean }> {
    return { replaced: await this.pools.recycleWorker(pool, workerId) };
  }
}
