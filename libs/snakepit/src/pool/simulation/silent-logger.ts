import type { Logger } from '@nestjs/common';

const ignore = () => undefined;

/** A logger that drops every line: the pool's log calls are not what these tests check. */
export const silentLogger = { log: ignore, warn: ignore, error: ignore, debug: ignore, verbose: ignore, fatal: ignore } as unknown as Logger;
