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

  /** `size` bytes of a pattern through the `flip` tool and back: whether they came back reversed. */
  @Post('flip')
  @HttpCode(200)
  async flip(@Body() body: { size: number }): Promise<{ size: number; intact: boolean }> {
    const data = Buffer.alloc(body.size);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const { result } = await this.pools.execute<Buffer>('flip', { data });
    return { size: result.length, intact: Buffer.isBuffer(result) && result.equals(data.reverse()) };
  }
}
