import { expect } from '@jest/globals';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { Logger as NestPinoLogger, PinoLogger } from 'nestjs-pino';
import { stripVTControlCharacters } from 'node:util';
import type { DestinationStream } from 'pino';
import { formatLogLine, SnakepitLogger } from './snakepit-logger';

const CRASH = {
  msg: 'worker died; replacing it',
  pool: 'default',
  worker_id: 'default-3',
  pid: 4242,
  reason: 'exit',
  exit_code: 1,
  signal: null,
  recycling: undefined,
};

/** What ConsoleLogger writes to stdout and stderr, colours removed. */
function captureConsole(): { stdout: string[]; stderr: string[] } {
  const written = { stdout: [] as string[], stderr: [] as string[] };
  for (const stream of ['stdout', 'stderr'] as const) {
    jest.spyOn(process[stream], 'write').mockImplementation((chunk: string | Uint8Array) => {
      written[stream].push(stripVTControlCharacters(String(chunk)));
      return true;
    });
  }
  return written;
}

/** The JSON lines a pino logger behind nestjs-pino writes, parsed. */
const pinoLines: Array<Record<string, unknown>> = [];
const pinoStream: DestinationStream = { write: (line: string) => void pinoLines.push(JSON.parse(line) as Record<string, unknown>) };
// nestjs-pino keeps its first root logger for the process: one for the whole file.
const pinoApp = new NestPinoLogger(new PinoLogger({ pinoHttp: [{ level: 'debug' }, pinoStream] }), {});

describe('SnakepitLogger', () => {
  beforeEach(() => (pinoLines.length = 0));
  afterEach(() => jest.restoreAllMocks());

  // First: Logger.overrideLogger (the later tests) cannot be undone, and this one needs Nest's untouched default.
  it("writes one key=value line per event with Nest's default logger", () => {
    const written = captureConsole();
    new SnakepitLogger('Snakepit').error(CRASH);
    expect(written.stdout).toEqual([]);
    expect(written.stderr).toHaveLength(1);
    expect(written.stderr[0]).toMatch(
      /^\[Nest\] \d+ {2}- .+ {3}ERROR \[Snakepit\] worker died; replacing it pool=default worker_id=default-3 pid=4242 reason=exit exit_code=1 signal=null\n$/,
    );
  });

  it('writes one line per event with a ConsoleLogger the app installed, at each level', () => {
    Logger.overrideLogger(new ConsoleLogger({ colors: false, logLevels: ['debug', 'log', 'warn'] }));
    const written = captureConsole();
    const logger = new SnakepitLogger('SnakepitCluster');
    logger.log({ msg: 'node joined', node: 'n2', address: '127.0.0.1:50100' });
    logger.warn({ msg: 'worker stream broke; killing it', pool: 'default', reason: 'read ECONNRESET' });
    logger.debug({ msg: 'worker ready', pool: 'default', start_ms: 12 });
    expect(written.stdout.map((line) => line.replace(/^.* (LOG|WARN|DEBUG) /, '$1 '))).toEqual([
      'LOG [SnakepitCluster] node joined node=n2 address=127.0.0.1:50100\n',
      'WARN [SnakepitCluster] worker stream broke; killing it pool=default reason="read ECONNRESET"\n',
      'DEBUG [SnakepitCluster] worker ready pool=default start_ms=12\n',
    ]);
  });

  it('leaves objects to a ConsoleLogger in JSON mode, which prints them as fields', () => {
    Logger.overrideLogger(new ConsoleLogger({ json: true }));
    const written = captureConsole();
    new SnakepitLogger('Snakepit').warn({ msg: 'circuit opened', pool: 'default' });
    expect(written.stdout).toHaveLength(1);
    expect(JSON.parse(written.stdout[0])).toMatchObject({ level: 'warn', context: 'Snakepit', message: { msg: 'circuit opened', pool: 'default' } });
  });

  it('gives nestjs-pino the object unchanged: its keys are the JSON fields', () => {
    Logger.overrideLogger(pinoApp);
    new SnakepitLogger('Snakepit').error(CRASH);
    new SnakepitLogger('Snakepit').debug({ msg: 'worker ready', pool: 'default', start_ms: 12 });
    expect(pinoLines).toEqual([
      expect.objectContaining({
        level: 50,
        context: 'Snakepit',
        msg: 'worker died; replacing it',
        pool: 'default',
        worker_id: 'default-3',
        pid: 4242,
        exit_code: 1,
        signal: null,
      }),
      expect.objectContaining({ level: 20, context: 'Snakepit', msg: 'worker ready', start_ms: 12 }),
    ]);
    expect(pinoLines[0]).not.toHaveProperty('recycling');
  });

  it('formats a buffered line (bufferLogs) for the logger installed before the buffer is flushed', () => {
    Logger.overrideLogger(new ConsoleLogger({ colors: false }));
    const written = captureConsole();
    Logger.attachBuffer();
    try {
      new SnakepitLogger('Snakepit').log({ msg: 'pools ready', pools: 'default:2' });
      Logger.overrideLogger(pinoApp);
    } finally {
      Logger.flush();
    }
    expect(written.stdout).toEqual([]);
    expect(pinoLines).toEqual([expect.objectContaining({ level: 30, msg: 'pools ready', pools: 'default:2', context: 'Snakepit' })]);
  });
});

describe('formatLogLine', () => {
  it('puts the message first and quotes values a key=value reader would split', () => {
    expect(formatLogLine({ pool: 'default', msg: 'drain deadline passed', reason: 'a b', quote: 'say "hi"', eq: 'a=b', empty: '', path: 'C:\\x' })).toBe(
      'drain deadline passed pool=default reason="a b" quote="say \\"hi\\"" eq="a=b" empty="" path="C:\\\\x"',
    );
  });

  it('keeps an event on one line: line breaks are escaped, nested values are compact JSON', () => {
    const line = formatLogLine({
      msg: 'tool raised an exception\n(traceback hidden)',
      traceback: 'Traceback (most recent call last):\n  File "x.py"\nValueError: bad',
      chain: [{ type: 'KeyError', message: 'k' }],
      details: { stderr: 'a b', code: 2 },
      pids: [1, 2],
    });
    expect(line).toBe(
      '"tool raised an exception\\n(traceback hidden)" traceback="Traceback (most recent call last):\\n  File \\"x.py\\"\\nValueError: bad" ' +
        'chain=[{"type":"KeyError","message":"k"}] details={"stderr":"a b","code":2} pids=[1,2]',
    );
    expect(line).not.toContain('\n');
  });

  it('prints numbers, booleans and null as they are and leaves absent fields out', () => {
    expect(formatLogLine({ msg: 'ok', n: 1.5, big: 10n, yes: true, none: null, gone: undefined })).toBe('ok n=1.5 big=10 yes=true none=null');
  });

  it('writes a message that is not a string as a field, and a nested value JSON cannot encode still on one line', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const line = formatLogLine({ msg: 42, value: cyclic, count: { n: 1n } });
    expect(line).toBe('msg=42 value=<ref *1> { a: 1, self: [Circular *1] } count={ n: 1n }');
  });

  it('passes strings and errors through unchanged (ConsoleLogger prints an error with its stack)', () => {
    const error = new Error('boom');
    expect(formatLogLine('plain text')).toBe('plain text');
    expect(formatLogLine(error)).toBe(error);
  });
});
