import type { Provider } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { SnakepitModule, type PoolOptions, type SnakepitModuleOptions } from '@snakepit/nestjs';
import { join } from 'node:path';
import { REPO_ROOT } from './sample-app';

/**
 * SnakepitModule embedded in a Nest module of the test's own, as an app embeds it:
 * real Python workers from the repository's venv, started (init) before it resolves.
 */
export async function embeddedSnakepit(
  name: string,
  pools: PoolOptions[],
  providers: Provider[] = [],
  options: Omit<SnakepitModuleOptions, 'pools'> = {},
): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      SnakepitModule.forRoot({
        python: join(REPO_ROOT, '.venv', 'bin', 'python'),
        instanceName: `${name}-${process.pid}`,
        // Running from TypeScript sources: the compiled watchdog script is not beside them.
        watchdog: false,
        ...options,
        pools,
      }),
    ],
    providers,
  }).compile();
  await moduleRef.init();
  return moduleRef;
}
