import { ConsoleLogger, LOG_LEVELS, Logger, type ConsoleLoggerOptions, type LoggerService, type LogLevel } from '@nestjs/common';
import { inspect } from 'node:util';

/**
 * The library's logger. Every Snakepit line is a structured object
 * (`{ msg, pool, worker_id, ... }`) written through Nest's Logger, so it goes
 * to whatever logger the application installed:
 * - a structured logger (nestjs-pino, or any other LoggerService) gets the
 *   object unchanged: with nestjs-pino its keys become the JSON line's fields;
 * - Nest's own ConsoleLogger, which would print each object as a multi-line
 *   dump, gets one line per event instead:
 *   `worker died; replacing it pool=default worker_id=default-3 pid=4242 reason=exit`.
 *
 * The choice is made where Nest's Logger picks the logger that writes the line
 * (`localInstance`, read on every call), not when the library logs: with
 * `bufferLogs`, lines logged before `app.useLogger()` are written by the logger
 * installed afterwards, and are formatted for it.
 */
export class SnakepitLogger extends Logger {
  override get localInstance(): LoggerService {
    const target = super.localInstance;
    return isTextConsoleLogger(target) ? lineWriter(target) : target;
  }
}

/** ConsoleLogger in its default text mode; with `json: true` it prints objects as JSON fields itself. */
function isTextConsoleLogger(logger: LoggerService | undefined): logger is ConsoleLogger {
  // `options` is protected; reading `json` is the only way to tell the two modes apart.
  return logger instanceof ConsoleLogger && (logger as unknown as { options: ConsoleLoggerOptions }).options.json !== true;
}

/** One writer per ConsoleLogger, so picking the writer allocates nothing per line. */
const writers = new WeakMap<ConsoleLogger, LoggerService>();

function lineWriter(target: ConsoleLogger): LoggerService {
  let writer = writers.get(target);
  if (!writer) {
    const write =
      (level: LogLevel) =>
      (message: unknown, ...params: unknown[]) =>
        target[level](formatLogLine(message), ...params);
    writer = Object.fromEntries(LOG_LEVELS.map((level) => [level, write(level)])) as Record<LogLevel, ReturnType<typeof write>>;
    writers.set(target, writer);
  }
  return writer;
}

/**
 * A structured log object as one line: its `msg`, then its other fields as
 * `key=value`. Anything else (a string, an Error) is returned unchanged.
 * Strings are quoted (JSON escapes) when they contain spaces, quotes, `=` or
 * line breaks, or are empty; objects and arrays are compact JSON; absent
 * (undefined) fields are left out, as a JSON logger leaves them out.
 * Hand-written rather than the `logfmt` package: that one prints nested values
 * as `[object Object]` and has no place for the leading message.
 */
export function formatLogLine(message: unknown): unknown {
  if (!isPlainObject(message)) return message;
  const { msg, ...fields } = message;
  const parts: string[] = [];
  if (typeof msg === 'string') parts.push(/[\r\n]/.test(msg) ? JSON.stringify(msg) : msg);
  else if (msg !== undefined) parts.push(`msg=${formatValue(msg)}`);
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) parts.push(`${key}=${formatValue(value)}`);
  return parts.join(' ');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return value !== '' && !/[\s"=\\]/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      // A cycle or a BigInt inside: still one line.
      return inspect(value, { compact: true, breakLength: Infinity });
    }
  }
  return String(value);
}
