import { Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { TerminusModule } from '@nestjs/terminus';
import { SnakepitModule } from '@snakepit/nestjs';
import { SnakepitHealthModule } from '@snakepit/nestjs/health';
import { HealthController } from './health.controller';
import { TextController } from './text.controller';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true }),
    SnakepitModule.forRootAsync({
      // Global, so SnakepitHealthModule's indicators can inject PoolService.
      isGlobal: true,
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        python: config.get<string>('SNAKEPIT_PYTHON', '.venv/bin/python'),
        pools: [
          {
            name: 'default',
            size: Number(config.get<string>('POOL_SIZE', '2')),
            adapter: 'consumer_models.text:TextAdapter',
            // The adapter is this app's own code, in py/.
            env: { PYTHONPATH: 'py' },
          },
        ],
      }),
    }),
    TerminusModule,
    SnakepitHealthModule,
  ],
  controllers: [TextController, HealthController],
})
export class AppModule implements OnApplicationShutdown {
  onApplicationShutdown(signal?: string): void {
    console.log(`consumer app stopped (${signal ?? 'closed'})`);
  }
}
