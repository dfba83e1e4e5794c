import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineSplitter, OUTPUT_LIMITS, OutputThrottle, WorkerProcess, type WorkerOutputLine } from './worker-process';

function split(chunks: Array<string | Buffer>, maxBytes = 1024): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter(maxBytes, (line) => lines.push(line));
  for (const chunk of chunks) splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  splitter.end();
  return lines;
}

describe('LineSplitter', () => {
  it('ends lines at \\n, \\r\\n and a lone \\r, as readline does, across chunk boundaries', () => {
    expect(split(['a\nb\r\nc\rd'])).toEqual(['a', 'b', 'c', 'd']);
    expect(split(['one\r', '\ntwo\r', 'three\n'])).toEqual(['one', 'two', 'three']);
    expect(split(['par', 'tial', '\n\n', 'last'])).toEqual(['partial', '', 'last']);
    expect(split(['no newline at all'])).toEqual(['no newline at all']);
    expect(split(['ends\n'])).toEqual(['ends']);
  });

  it('keeps only the first maxBytes of a longer line and says how many bytes went, up to the next newline', () => {
    const lines = split(['x'.repeat(600), 'y'.repeat(600), 'z'.repeat(300), '\nnext\n'], 1000);
    expect(lines).toEqual([`${'x'.repeat(600)}${'y'.repeat(400)} …[snakepit: 500 more bytes of this line dropped]`, 'next']);
  });

  it('caps a huge newline-less output fed in pipe-sized chunks, and a last cut line is emitted at the end', () => {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const lines: string[] = [];
    const splitter = new LineSplitter(16 * 1024, (line) => lines.push(line));
    for (let i = 0; i < 160; i++) splitter.push(chunk); // 10 MiB without a newline
    expect(lines).toEqual([]);
    splitter.end();
    expect(lines).toEqual([`${'a'.repeat(16 * 1024)} …[snakepit: ${10 * 1024 * 1024 - 16 * 1024} more bytes of this line dropped]`]);
  });

  it('cuts on a UTF-8 character boundary', () => {
    // 'é' is 2 bytes: 5 bytes of room hold 2 of them, the third is dropped whole.
    expect(split(['ééééé\n'], 5)).toEqual(['éé …[snakepit: 6 more bytes of this line dropped]']);
    // '€' is 3 bytes, '😀' 4.
    expect(split(['€€\n'], 4)).toEqual(['€ …[snakepit: 3 more bytes of this line dropped]']);
    expect(split(['a😀b\n'], 4)).toEqual(['a …[snakepit: 5 more bytes of this line dropped]']);
    expect(split(['a😀b\n'], 5)).toEqual(['a😀 …[snakepit: 1 more bytes of this line dropped]']);
  });
});

describe('OutputThrottle', () => {
  it('lets a burst through, then the refill rate; one summary reports the dropped count', async () => {
    let now = 0;
    const summaries: number[] = [];
    let summarized!: () => void;
    const summary = new Promise<void>((resolve) => (summarized = resolve));
    const throttle = new OutputThrottle(
      (count) => {
        summaries.push(count);
        summarized();
      },
      { burstLines: 3, linesPerSecond: 2, summaryDelayMs: 10 },
      () => now,
    );
    expect([throttle.admit(), throttle.admit(), throttle.admit()]).toEqual([true, true, true]);
    expect([throttle.admit(), throttle.admit()]).toEqual([false, false]);
    now += 500; // one token back at 2 per second
    expect([throttle.admit(), throttle.admit()]).toEqual([true, false]);
    await summary;
    expect(summaries).toEqual([3]);
    now += 60_000; // the bucket refills only up to the burst
    expect(Array.from({ length: 4 }, () => throttle.admit())).toEqual([true, true, true, false]);
  });

  it('defaults to a burst of 200 lines and 50 lines per second', () => {
    expect(OUTPUT_LIMITS).toMatchObject({ maxLineBytes: 16 * 1024, burstLines: 200, linesPerSecond: 50 });
  });
});

describe('WorkerProcess output', () => {
  it("relays a worker's stdout and stderr line by line, a newline-less flood capped at 16 KiB", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snakepit-output-'));
    // Stands in for Python: 1 MiB on stdout without a newline, then normal lines.
    const fakePython = join(dir, 'python');
    writeFileSync(fakePython, "#!/bin/sh\nhead -c 1048576 /dev/zero | tr '\\0' x\necho\necho after\necho on-stderr >&2\n", { mode: 0o700 });
    const lines: WorkerOutputLine[] = [];
    try {
      const proc = WorkerProcess.spawn(
        {
          workerId: 'w-1',
          python: fakePython,
          adapter: 'pkg.mod:Adapter',
          address: '127.0.0.1:0',
          capacity: 1,
          logLevel: 'info',
          env: { PATH: process.env.PATH ?? '' },
          maxMessageBytes: 1024 * 1024,
          startTimeoutMs: 10_000,
          shutdownGraceMs: 1_000,
          memoryLimitMb: 0,
        },
        (line) => lines.push(line),
      );
      expect(await proc.exited).toEqual({ code: 0, signal: null });
      // 'exit' can come before the pipes are drained.
      for (let i = 0; i < 100 && lines.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      const stdout = lines.filter((line) => line.stream === 'stdout').map((line) => line.line);
      expect(stdout).toEqual([`${'x'.repeat(16 * 1024)} …[snakepit: ${1024 * 1024 - 16 * 1024} more bytes of this line dropped]`, 'after']);
      expect(lines.filter((line) => line.stream === 'stderr').map((line) => line.line)).toEqual(['on-stderr']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
