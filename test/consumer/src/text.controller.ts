import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { PoolService } from '@snakepit/nestjs';

export interface TextStats {
  words: number;
  top: Array<[string, number]>;
}

@Controller('text')
export class TextController {
  constructor(private readonly pools: PoolService) {}

  /** The body goes to the tool as its arguments; Snakepit checks them against the tool's signature. */
  @Post('stats')
  @HttpCode(200)
  async stats(@Body() body: Record<string, unknown>): Promise<TextStats> {
    const { result } = await this.pools.execute<TextStats>('stats', body);
    return result;
  }
}
