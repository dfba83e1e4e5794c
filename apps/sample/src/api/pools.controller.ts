import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { PoolService, type PoolInfo, type PoolTools } from '@snakepit/nestjs';

@Controller('api')
export class PoolsController {
  constructor(private readonly pools: PoolService) {}

  @Get('pools')
  list(): { pools: PoolInfo[] } {
    return { pools: this.pools.poolInfo() };
  }

  @Get('tools')
  tools(): { pools: PoolTools[] } {
    return { pools: this.pools.listTools() };
  }

  /** Rolling restart: every worker replaced one by one, no call failed (for code upgrades). */
  @Post('pools/:pool/restart')
  @HttpCode(200)
  async restart(@Param('pool') pool: string): Promise<{ replaced: number }> {
    return { replaced: await this.pools.rollingRestart(pool) };
  }

  /** Recycles every worker of the pool at once, each draining its calls first. */
  @Post('pools/:pool/recycle')
  @HttpCode(200)
  async recycleAll(@Param('pool') pool: string): Promise<{ replaced: number }> {
    return { replaced: await this.pools.recycleAll(pool) };
  }

  @Post('pools/:pool/workers/:workerId/recycle')
  @HttpCode(200)
  async recycleWorker(@Param('pool') pool: string, @Param('workerId') workerId: string): Promise<{ replaced: boolean }> {
    return { replaced: await this.pools.recycleWorker(pool, workerId) };
  }
}
