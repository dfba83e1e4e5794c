import type { ChunkSink } from './pool.interfaces';
import type { StreamChunk } from './pool.service';

/**
 * Starts one streaming call: chunks go to `sink` (whose promise settles when
 * the consumer took the chunk), `signal` aborts the call, and the promise
 * settles with the tool (its `result` becomes the only chunk of a tool that
 * streamed none, as executeStream does).
 */
export type StreamSource = (sink: ChunkSink, signal: AbortSignal) => Promise<{ result: unknown }>;

interface Buffered {
  chunk: StreamChunk;
  /** Returns the chunk's credit. */
  taken: () => void;
}

/**
 * A pull-based stream: every iteration starts the call anew, and a chunk's
 * credit is returned only when the consumer pulls it, so at most the worker's
 * window of chunks waits here however slow the consumer is. Breaking out of
 * the loop (`return()`) or throwing from it aborts the call.
 *
 * Hand-written rather than rxjs' `eachValueFrom` or Node's `on()`: those buffer
 * without bound and have no per-item acknowledgement to hang the credit on.
 */
export function pullStream<T>(source: StreamSource, outer?: AbortSignal): AsyncIterable<StreamChunk<T>> {
  return {
    [Symbol.asyncIterator]: () => new PullIterator<T>(source, outer),
  };
}

class PullIterator<T> implements AsyncIterator<StreamChunk<T>> {
  private readonly buffer: Buffered[] = [];
  private readonly aborter = new AbortController();
  private waiter?: { resolve: (result: IteratorResult<StreamChunk<T>>) => void; reject: (error: unknown) => void };
  private chunks = 0;
  /** Set once the call settled: what follows the buffered chunks. */
  private ending?: { error: unknown } | { result: unknown };
  private closed = false;

  constructor(source: StreamSource, outer?: AbortSignal) {
    const signal = outer ? AbortSignal.any([outer, this.aborter.signal]) : this.aborter.signal;
    source(this.sink, signal).then(
      ({ result }) => this.settle({ result }),
      (error: unknown) => this.settle({ error }),
    );
  }

  next(): Promise<IteratorResult<StreamChunk<T>>> {
    if (this.waiter) return Promise.reject(new Error('pullStream: next() called again before the previous one settled'));
    const item = this.buffer.shift();
    if (item) {
      item.taken();
      return Promise.resolve({ done: false, value: item.chunk as StreamChunk<T> });
    }
    if (this.closed) return Promise.resolve({ done: true, value: undefined });
    if (this.ending) return this.finish();
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** The consumer stopped early: the call is cancelled, nothing buffered is kept. */
  return(): Promise<IteratorResult<StreamChunk<T>>> {
    this.close();
    return Promise.resolve({ done: true, value: undefined });
  }

  throw(error: unknown): Promise<IteratorResult<StreamChunk<T>>> {
    this.close();
    return Promise.reject(error);
  }

  private readonly sink: ChunkSink = (data, seq) => {
    if (this.closed) return;
    this.chunks++;
    const chunk = { data, seq };
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      waiter.resolve({ done: false, value: chunk as StreamChunk<T> });
      return;
    }
    return new Promise<void>((taken) => this.buffer.push({ chunk, taken }));
  };

  private settle(ending: { error: unknown } | { result: unknown }): void {
    // A tool that streamed nothing gives its result as the only chunk.
    if ('result' in ending && this.chunks === 0 && ending.result !== null && ending.result !== undefined) {
      this.chunks++;
      this.buffer.push({ chunk: { data: ending.result, seq: 0 }, taken: () => undefined });
      ending = { result: null };
    }
    this.ending = ending;
    const waiter = this.waiter;
    if (!waiter || this.closed) return;
    this.waiter = undefined;
    const item = this.buffer.shift();
    if (item) waiter.resolve({ done: false, value: item.chunk as StreamChunk<T> });
    else this.finish().then(waiter.resolve, waiter.reject);
  }

  private finish(): Promise<IteratorResult<StreamChunk<T>>> {
    const ending = this.ending!;
    this.closed = true;
    return 'error' in ending ? Promise.reject(ending.error) : Promise.resolve({ done: true, value: undefined });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    // Once settled there is no call left to cancel; aborting then would only be noise.
    if (!this.ending) this.aborter.abort();
    this.buffer.length = 0;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve({ done: true, value: undefined });
  }
}
