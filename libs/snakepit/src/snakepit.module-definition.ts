import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { SnakepitModuleOptions } from './options/snakepit-options';

export const {
  ConfigurableModuleClass: ConfigurableSnakepitModule,
  MODULE_OPTIONS_TOKEN: SNAKEPIT_MODULE_OPTIONS,
  OPTIONS_TYPE: SNAKEPIT_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: SNAKEPIT_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SnakepitModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
