import 'reflect-metadata';
import { loadConfig } from './config';
import { createApp } from './create-app';

createApp(loadConfig()).catch((error: unknown) => {
  // Pool start failures (bad adapter, missing Python) end here with their full message.
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
