import { Injectable, NotFoundException } from '@nestjs/common';
import { HostTool, PoolService, type HostToolContext } from '@snakepit/nestjs';

const USERS = new Map([
  [1, { id: 1, name: 'Ada' }],
  [2, { id: 2, name: 'Grace' }],
]);

/** Host tools the sample app exposes to Python tools (`ctx.call_host(...)`). */
@Injectable()
export class DirectoryHostTools {
  constructor(private readonly pools: PoolService) {}

  @HostTool('lookup_user', {
    description: 'A user of the directory, by id',
    parameters: [{ name: 'id', type: 'integer', required: true }],
  })
  lookupUser({ id }: { id: number }): { id: number; name: string } {
    const user = USERS.get(id);
    if (!user) throw new NotFoundException(`no user ${id}`);
    return user;
  }

  @HostTool('wait', {
    description: 'Waits ms milliseconds (stops early when the Python caller is cancelled)',
    parameters: [{ name: 'ms', type: 'integer', required: true }],
  })
  wait({ ms }: { ms: number }, { signal }: HostToolContext): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(ms), ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new Error('cancelled'));
      });
    });
  }

  @HostTool('run_python', {
    description: 'Runs a Python tool from the host (lets Python call Python through the host; depth-limited)',
    parameters: [
      { name: 'tool', type: 'string', required: true },
      { name: 'args', type: 'object' },
    ],
  })
  async runPython({ tool, args }: { tool: string; args?: Record<string, unknown> }): Promise<unknown> {
    return (await this.pools.execute(tool, args ?? {})).result;
  }
}
