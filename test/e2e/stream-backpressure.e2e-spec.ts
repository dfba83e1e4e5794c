import { readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { eventually, sleep, startSampleApp, type SampleApp } from '../helpers/sample-app';

const CHUNKS = 2_000;
const CHUNK_CHARS = 64 * 1024;
const STREAM_BYTES = CHUNKS * CHUNK_CHARS; // 125 MiB of chunk data, more on the wire
// What a paused client may cost the host: the stream window (64 chunks, 4 MiB), socket and gRPC buffers, GC slack.
// Without end-to-end backpressure the host takes the whole stream while the client sleeps.
// Half the stream: the host buffering it (no backpressure) grows by more than all of it; GC lag under load stays far below.
const GROWTH_BOUND = STREAM_BYTES / 2;

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** Counts the SSE events of a response as they arrive, checking each chunk in passing. */
class SseTally {
  chunks = 0;
  bytes = 0;
  ended = false;
  badChunk?: string;
  private pending = '';

  feed(text: string): void {
    this.bytes += text.length;
    this.pending += text;
    let cut: number;
    while ((cut = this.pending.indexOf('\n\n')) >= 0) {
      const block = this.pending.slice(0, cut);
      this.pending = this.pending.slice(cut + 2);
      if (block.startsWith('event: end')) this.ended = true;
      else if (block.startsWith('event:')) this.badChunk ??= block.slice(0, 500);
      else this.check(block);
    }
  }

  private check(block: string): void {
    const [idLine, dataLine] = block.split('\n');
    const data = JSON.parse(dataLine.slice('data: '.length)) as string;
    if (idLine !== `id: ${this.chunks}` || data.length !== CHUNK_CHARS || data !== 'y'.repeat(CHUNK_CHARS)) {
      this.badChunk ??= `${idLine}, ${data.length} chars`;
    }
    this.chunks++;
  }
}

describe('SSE streams with end-to-end backpressure', () => {
  let app: SampleApp;

  beforeAll(async () => {
    app = await startSampleApp();
  }, 90_000);

  afterAll(async () => {
    await app?.stop();
  });

  it('a client that stops reading pauses the generator instead of the host buffering the stream; it completes once the client reads again', async () => {
    // Warm the route and the heap first, so the baseline is not the cost of a first request.
    const warm = await app.request('POST', '/api/stream', { tool: 'chunks', args: { n: 200, size: CHUNK_CHARS } });
    expect(warm.status).toBe(200);
    const baseline = rssBytes(app.pid);

    const tally = new SseTally();
    let response: IncomingMessage | undefined;
    const done = new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({ tool: 'chunks', args: { n: CHUNKS, size: CHUNK_CHARS }, timeoutMs: 300_000 });
      const req = request(`${app.baseUrl}/api/stream`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        response = res;
        res.setEncoding('utf8');
        res.on('data', (text: string) => tally.feed(text));
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });

    // The stream is live: now the client stops reading (its socket fills, then the host's, then the window).
    await eventually(() => tally.chunks > 0 || undefined, 30_000);
    response!.pause();
    let peak = 0;
    // Long enough for the worker to produce the whole stream several times over if nothing held it back.
    for (let sample = 0; sample < 40; sample++) {
      await sleep(150);
      peak = Math.max(peak, rssBytes(app.pid));
    }
    const receivedWhilePaused = tally.bytes;
    expect(receivedWhilePaused).toBeLessThan(STREAM_BYTES / 4); // the client really was not reading
    expect(peak - baseline).toBeLessThan(GROWTH_BOUND);

    response!.resume();
    await done;
    expect(tally.badChunk).toBeUndefined();
    expect(tally.chunks).toBe(CHUNKS);
    expect(tally.ended).toBe(true);
    // The worker is free again and the host still answers.
    expect((await app.execute('ping')).body.result).toBe('pong');
  }, 240_000);
});
