import 'reflect-metadata';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { SnakepitExceptionFilter } from '@snakepit/nestjs';
import { AppModule } from './app.module';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  // Snakepit errors become HTTP responses with their code (400 INVALID_ARGUMENTS, 504 TIMEOUT, ...).
  app.useGlobalFilters(new SnakepitExceptionFilter({ exposeTracebacks: false }, app.getHttpAdapter()));
  // SIGTERM and SIGINT stop the Python workers before the process exits.
  app.enableShutdownHooks();
  const config = app.get(ConfigService);
  await app.listen(Number(config.get<string>('PORT', '3000')), '127.0.0.1');
  console.log(`consumer app listening at ${await app.getUrl()}`);
}

bootstrap().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
