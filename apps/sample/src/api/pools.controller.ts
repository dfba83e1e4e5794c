import { Controller, Get } from '@nestjs/common';
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
}
