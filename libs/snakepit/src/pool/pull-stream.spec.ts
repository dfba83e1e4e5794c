import { SnakepitError } from '../errors/snakepit-error';
import type { ChunkSink } from './pool.interfaces';
import { pullStream } from './pull-stream';

const WINDOW = 4;

/**
 * A fake worker behind the sink: it streams `total` chunks but, like the Python
 * side, never has more than WINDOW chunks without credit, and credit comes back
 * only when the sink's answer settles.
 */
class FakeWorker {
  sent = 0;
  credited = 0;
  maxAhead = 0;
  aborted = false;
  private wake?: () => void;

  constructor(
    private readonly total: number,
    private readonly failWith?: Error,
  ) {}

  readonly source = async (sink: ChunkSink, signal: AbortSignal): Promise<{ result: unknown }> => {
    signal.addEventListener('abort', () => {
      this.aborted = true;
      this.wake?.();
    });
    while (this.sent < this.total) {
      if (this.aborted) throw new SnakepitError('CANCELLED', 'cancelled');
      if (this.sent - this.credited >= WINDOW) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const taken = sink({ n: this.sent }, this.sent);
      this.sent++;
      this.maxAhead = Math.max(this.maxAhead, this.sent - this.credited);
      const credit = () => {
        this.credited++;
        this.wake?.();
      };
      if (taken instanceof Promise) void taken.then(credit);
      else credit();
      await Promise.resolve(); // a worker sends from its own turns
    }
    if (this.failWith) throw this.failWith;
    return { result: null };
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('pullStream', () => {
  it('never lets the producer run more than the window ahead of a slow consumer, and delivers everything in order', async () => {
    const worker = new FakeWorker(50);
    const seen: number[] = [];
    for await (const chunk of pullStream<{ n: number }>(worker.source)) {
      seen.push(chunk.seq);
      expect(chunk.data.n).toBe(chunk.seq);
      await settle(); // the slow consumer: the producer gets every chance to run ahead
      expect(worker.sent - seen.length).toBeLessThanOrEqual(WINDOW);
    }
    expect(seen).toEqual([...Array(50).keys()]);
    expect(worker.maxAhead).toBe(WINDOW);
    expect(worker.aborted).toBe(false);
  });

  it('returns credit only when the consumer pulls: an idle consumer stops the producer at the window', async () => {
    const worker = new FakeWorker(1000);
    const iterator = pullStream(worker.source)[Symbol.asyncIterator]();
    await settle();
    expect(worker.sent).toBe(WINDOW);
    expect(worker.credited).toBe(0);
    await iterator.next();
    await settle();
    expect(worker.credited).toBe(1);
    expect(worker.sent).toBe(WINDOW + 1);
    await iterator.return!();
    expect(worker.aborted).toBe(true);
  });

  it('breaking out of the loop cancels the call', async () => {
    const worker = new FakeWorker(1000);
    for await (const chunk of pullStream(worker.source)) {
      if (chunk.seq === 2) break;
    }
    expect(worker.aborted).toBe(true);
    await settle(); // the call's CANCELLED rejection is absorbed, not unhandled
  });

  it('an outer signal cancels the call', async () => {
    const worker = new FakeWorker(1000);
    const outer = new AbortController();
    const iterator = pullStream(worker.source, outer.signal)[Symbol.asyncIterator]();
    await iterator.next();
    outer.abort();
    await expect(iterator.next()).resolves.toMatchObject({ done: false }); // chunks already buffered are still given
    expect(worker.aborted).toBe(true);
  });

  it('gives the buffered chunks, then the call error', async () => {
    const worker = new FakeWorker(3, new SnakepitError('PYTHON_EXCEPTION', 'boom'));
    const seen: number[] = [];
    const consume = async () => {
      for await (const chunk of pullStream(worker.source)) seen.push(chunk.seq);
    };
    await expect(consume()).rejects.toMatchObject({ code: 'PYTHON_EXCEPTION' });
    expect(seen).toEqual([0, 1, 2]);
  });

  it("gives a non-streaming tool's result as the only chunk", async () => {
    const chunks = [];
    for await (const chunk of pullStream(() => Promise.resolve({ result: 42 }))) chunks.push(chunk);
    expect(chunks).toEqual([{ data: 42, seq: 0 }]);
  });

  it('starts a new call for every iteration, none before', async () => {
    let started = 0;
    const stream = pullStream(() => {
      started++;
      return Promise.resolve({ result: started });
    });
    expect(started).toBe(0);
    for await (const chunk of stream) expect(chunk.data).toBe(1);
    for await (const chunk of stream) expect(chunk.data).toBe(2);
    expect(started).toBe(2);
  });
});
