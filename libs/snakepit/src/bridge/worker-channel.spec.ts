import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import * as protobuf from 'protobufjs';
import type { HostFrame } from './generated/snakepit/bridge/v1/HostFrame';
import type { HostMessage } from './generated/snakepit/bridge/v1/HostMessage';
import { hostMessageBytes } from './frame-size';
import { WorkerChannel, type CallListener } from './worker-channel';
import { Prng } from '../pool/simulation/prng';
import type { SharedPayloads } from '../shared-memory/shared-memory.interfaces';
import { WorkerRegions } from '../shared-memory/worker-regions';
import type { WorkerMessage__Output } from './generated/snakepit/bridge/v1/WorkerMessage';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** Records the frames the channel writes, in place of the gRPC stream. */
class RecordingStream extends EventEmitter {
  readonly frames: HostMessage[][] = [];
  write(frame: HostFrame): boolean {
    this.frames.push(frame.messages ?? []);
    return true;
  }
  cancel(): void {
    // Nothing in flight: the fake only records the frames written.
  }
  /** The request ids of each frame. */
  get ids(): number[][] {
    return this.frames.map((frame) => frame.map((message) => Number(message.id)));
  }
}

const listener: CallListener = { chunk: () => undefined, end: () => undefined, broken: () => undefined };
const request = { tool: 'add', args: { json: Buffer.from('{}') } };
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 5));

/** A channel on an address nothing listens on: the client never connects, the recording stream stands in. */
function recordingChannel(
  maxMessageBytes: number,
  onBroken: () => void = () => undefined,
  shared?: SharedPayloads,
): { channel: WorkerChannel; stream: RecordingStream } {
  const channel = new WorkerChannel('unix:///nonexistent/snakepit-test.sock', 'token', maxMessageBytes, shared);
  const stream = new RecordingStream();
  (channel as unknown as { client: { Connect: () => RecordingStream } }).client.Connect = () => stream;
  channel.open(onBroken, () => undefined);
  return { channel, stream };
}

describe('WorkerChannel frames', () => {
  let channel: WorkerChannel;
  let stream: RecordingStream;

  beforeEach(() => ({ channel, stream } = recordingChannel(1 << 20)));

  afterEach(() => channel.close('test over'));

  it('sends a call on an idle stream within the same tick', async () => {
    channel.call(request, listener);
    await Promise.resolve();
    expect(stream.ids).toEqual([[1]]);
  });

  it('puts calls started in one tick into one frame', async () => {
    for (let i = 0; i < 3; i++) channel.call(request, listener);
    await nextTurn();
    expect(stream.ids).toEqual([[1, 2, 3]]);
  });

  it('on a busy stream, coalesces calls started by separate callbacks of one event-loop turn', async () => {
    channel.call(request, listener); // stays in flight: the stream is busy from now on
    await nextTurn();
    // Two timers due together run as two callbacks of one turn, as two HTTP requests read together do.
    setTimeout(() => channel.call(request, listener), 0);
    setTimeout(() => channel.call(request, listener), 0);
    await nextTurn();
    expect(stream.ids).toEqual([[1], [2, 3]]);
  });
});

describe('WorkerChannel limits and breaks', () => {
  const limit = 64 * 1024;
  let channel: WorkerChannel;
  let stream: RecordingStream;
  let brokenAt: string[];

  beforeEach(() => {
    brokenAt = [];
    ({ channel, stream } = recordingChannel(limit, () => brokenAt.push(`channel broken=${channel.isBroken}`)));
  });

  afterEach(() => channel.close('test over'));

  it('splits a burst of calls that would not fit one message into frames under the limit, in order', async () => {
    const args = { json: Buffer.alloc(20_000, 'a') };
    for (let i = 0; i < 10; i++) channel.call({ tool: 'echo', args }, listener);
    await nextTurn();
    expect(stream.ids.flat()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(stream.frames.length).toBeGreaterThan(3);
    const bytes = stream.frames.map((frame) => frame.reduce((sum, m) => sum + hostMessageBytes(m), 0));
    expect(Math.max(...bytes)).toBeLessThanOrEqual(limit);
  });

  it('is unusable before any listener hears of a break, and tells which calls never left the host', async () => {
    const heard: Array<[number, boolean, boolean]> = [];
    const recording = (id: number): CallListener => ({
      chunk: () => undefined,
      end: () => undefined,
      broken: (_error, delivered) => heard.push([id, delivered, channel.isBroken]),
    });
    channel.call(request, recording(1));
    await nextTurn(); // call 1 is written
    channel.call(request, recording(2)); // call 2 waits in the outbox
    stream.emit('error', Object.assign(new Error('boom'), { details: 'boom' }));
    expect(brokenAt).toEqual(['channel broken=true']);
    expect(heard).toEqual([
      [1, true, true],
      [2, false, true],
    ]);
    expect(channel.call(request, recording(3))).toBeUndefined();
  });
});

describe('hostMessageBytes', () => {
  it('bounds the real protobuf encoding of a call from above', () => {
    const root = protobuf.loadSync(join(__dirname, '../../../../proto/snakepit/bridge/v1/bridge.proto'));
    const HostMessage = root.lookupType('snakepit.bridge.v1.HostMessage');
    const message = {
      id: 2 ** 40,
      call: {
        tool: 'a_tool_name',
        args: { json: Buffer.alloc(300_000, 'a') },
        timeoutMs: 2 ** 31,
        sessionId: 'sess_0123456789abcdef0123456789abcdef',
        session: { values: { a: Buffer.alloc(200, 'b'), long_key_name: Buffer.alloc(70_000, 'c') }, version: 2 ** 40 },
        metadata: { traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01', 'x-request-id': 'r'.repeat(200) },
        stream: true,
        hostCallDepth: 3,
      },
    };
    const encoded = HostMessage.encode(HostMessage.fromObject(message)).finish().length;
    expect(hostMessageBytes(message)).toBeGreaterThanOrEqual(encoded + 6);
  });

  it('bounds it from above with blobs too: paths of long keys and large indices, many dimensions, large data', () => {
    const root = protobuf.loadSync(join(__dirname, '../../../../proto/snakepit/bridge/v1/bridge.proto'));
    const HostMessage = root.lookupType('snakepit.bridge.v1.HostMessage');
    const blob = (n: number) => ({
      path: [{ key: 'k'.repeat(200 * n) }, { index: 2 ** 32 - 1 }, { key: 'é✓' }, { index: 0 }, { key: '' }],
      dtype: 'complex128',
      shape: Array.from({ length: 32 }, () => 2 ** 52),
      data: Buffer.alloc(70_000 * n, 'd'),
    });
    const message = {
      id: 2 ** 40,
      call: {
        tool: 't',
        args: { json: Buffer.from('{"k":[null]}'), blobs: [blob(1), blob(3), { path: [], dtype: 'bytes', shape: [], data: Buffer.alloc(0) }] },
      },
    };
    const encoded = HostMessage.encode(HostMessage.fromObject(message)).finish().length;
    const withoutBlobs = hostMessageBytes({ ...message, call: { ...message.call, args: { json: message.call.args.json } } });
    expect(hostMessageBytes(message)).toBeGreaterThanOrEqual(encoded + 6);
    // The blobs are counted, not only the JSON beside them.
    expect(hostMessageBytes(message) - withoutBlobs).toBeGreaterThan(4 * 70_000);
  });

  it('bounds it from above for blobs that are shared-memory slots, and many release offsets', () => {
    const root = protobuf.loadSync(join(__dirname, '../../../../proto/snakepit/bridge/v1/bridge.proto'));
    const HostMessage = root.lookupType('snakepit.bridge.v1.HostMessage');
    const slot = { path: [{ key: 'x' }], dtype: 'float64', shape: [2 ** 40], shared: { offset: 2 ** 52, length: 2 ** 52 } };
    const bytesSlot = { path: [], dtype: 'bytes', shape: [], shared: { offset: 2 ** 52, length: 2 ** 52 } };
    const call = {
      id: 2 ** 40,
      call: { tool: 't', args: { json: Buffer.from('{"x":null}'), blobs: Array.from({ length: 50 }, (_, i) => (i % 2 ? slot : bytesSlot)) } },
    };
    const release = { id: 0, release: { offsets: Array.from({ length: 500 }, () => 2 ** 52) } };
    for (const message of [call, release]) {
      expect(hostMessageBytes(message)).toBeGreaterThanOrEqual(HostMessage.encode(HostMessage.fromObject(message)).finish().length);
    }
  });
});

const streamRequest = { tool: 'chunks', args: { json: Buffer.from('{}') }, stream: true };
const credits = (frame: HostMessage[]) => frame.filter((m) => m.credit).map((m) => [Number(m.id), m.credit!.chunks]);

describe('WorkerChannel stream credit', () => {
  let channel: WorkerChannel;
  let stream: RecordingStream;

  beforeEach(() => ({ channel, stream } = recordingChannel(1 << 20)));

  afterEach(() => channel.close('test over'));

  it('merges the credits of one call queued in one flush, and keeps calls apart', async () => {
    const first = channel.call(streamRequest, listener)!;
    const second = channel.call(streamRequest, listener)!;
    await nextTurn();
    channel.credit(first, 1);
    channel.credit(second, 2);
    channel.credit(first, 3);
    await nextTurn();
    expect(stream.frames).toHaveLength(2);
    expect(credits(stream.frames[1])).toEqual([
      [first, 4],
      [second, 2],
    ]);
    channel.credit(first, 1); // a new flush starts a new message
    await nextTurn();
    expect(credits(stream.frames[2])).toEqual([[first, 1]]);
  });

  it('sends nothing for a call no longer in flight, or for no chunks', async () => {
    const id = channel.call(streamRequest, listener)!;
    await nextTurn();
    channel.credit(id, 0);
    channel.credit(id + 100, 5);
    await nextTurn();
    expect(stream.frames).toHaveLength(1);
  });
});

describe('WorkerChannel over shared memory', () => {
  const threshold = 1024;
  let dir: string;
  let regions: WorkerRegions;
  let channel: WorkerChannel;
  let stream: RecordingStream;
  let ended: WorkerMessage__Output[];
  const ending: CallListener = { chunk: () => undefined, end: (message) => ended.push(message), broken: () => undefined };
  const bigCall = (bytes: Buffer) => ({
    tool: 'sum',
    args: { json: Buffer.from('{"x":null}'), blobs: [{ path: [{ key: 'x' }], dtype: 'bytes', shape: [], data: bytes }] },
  });
  const answer = (message: Partial<WorkerMessage__Output> & { id: number }) => stream.emit('data', { messages: [message] });

  beforeEach(() => {
    ended = [];
    dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'snakepit-spec-'));
    regions = new WorkerRegions(dir, 'pool-1', { dir, thresholdBytes: threshold, regionBytes: 64 * 1024 });
    ({ channel, stream } = recordingChannel(1 << 20, () => undefined, regions));
  });

  afterEach(() => {
    channel.close('test over');
    regions.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a blob over the threshold to the host region and sends only its slot, held until the call ends', async () => {
    const bytes = Buffer.alloc(5000, 7);
    const id = channel.call(bigCall(bytes), ending)!;
    await Promise.resolve();
    const blob = stream.frames[0][0].call!.args!.blobs![0];
    expect(blob.data).toBeUndefined();
    const { offset, length } = blob.shared as { offset: number; length: number };
    expect(length).toBe(5000);
    expect(
      readFileSync(regions.inPath)
        .subarray(offset, offset + length)
        .equals(bytes),
    ).toBe(true);
    expect(regions.inUse).toBeGreaterThanOrEqual(5000);
    answer({ id, kind: 'result', result: { value: { json: Buffer.from('1'), blobs: [] }, session: null } });
    expect(regions.inUse).toBe(0);
  });

  it("keeps a blob under the threshold, and the caller's own payload, as they were", async () => {
    const call = bigCall(Buffer.alloc(100));
    channel.call(call, ending);
    await Promise.resolve();
    expect(stream.frames[0][0].call!.args!.blobs![0].data).toHaveLength(100);
    const large = bigCall(Buffer.alloc(4096));
    channel.call(large, ending);
    await nextTurn();
    expect(large.args.blobs[0].data).toHaveLength(4096); // a requeued call can still go to another worker
  });

  it('fails a call its region cannot take with RESOURCE_EXHAUSTED, sending nothing and holding nothing', async () => {
    channel.call(bigCall(Buffer.alloc(40 * 1024)), ending);
    channel.call(bigCall(Buffer.alloc(40 * 1024)), ending);
    await nextTurn();
    expect(stream.frames.flat()).toHaveLength(1);
    expect(ended).toHaveLength(1);
    expect(ended[0].error!.error).toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    expect(JSON.parse(ended[0].error!.error!.detailsJson.toString())).toMatchObject({ option: 'sharedMemory.regionBytes', bytes: 40 * 1024 });
    expect(regions.inUse).toBe(40 * 1024);
  });

  it('reads a result slot from the worker region and hands it back in the next frame', async () => {
    const id = channel.call({ tool: 'make', args: { json: Buffer.from('{}') } }, ending)!;
    await Promise.resolve();
    writeFileSync(regions.outPath, Buffer.concat([Buffer.alloc(128), Buffer.from('shared result bytes')]));
    answer({
      id,
      kind: 'result',
      result: {
        value: { json: Buffer.from('null'), blobs: [{ path: [], dtype: 'bytes', shape: [], data: Buffer.alloc(0), shared: { offset: 128, length: 19 } }] },
        session: null,
      },
    });
    expect(ended[0].result!.value!.blobs[0].data.toString()).toBe('shared result bytes');
    await nextTurn();
    expect(stream.frames[1]).toEqual([{ id: 0, release: { offsets: [128] } }]);
  });

  it('ends a call whose result slot lies outside the region with SERIALIZATION_ERROR, and still hands the slot back', async () => {
    const id = channel.call({ tool: 'make', args: { json: Buffer.from('{}') } }, ending)!;
    await Promise.resolve();
    answer({
      id,
      kind: 'result',
      result: {
        value: { json: Buffer.from('null'), blobs: [{ path: [], dtype: 'bytes', shape: [], data: Buffer.alloc(0), shared: { offset: 64, length: 1 << 20 } }] },
        session: null,
      },
    });
    expect(ended[0].error!.error).toMatchObject({ code: 'SERIALIZATION_ERROR' });
    await nextTurn();
    expect(stream.frames[1]).toEqual([{ id: 0, release: { offsets: [64] } }]);
  });

  it('releases the slots of every call in flight when the stream breaks', async () => {
    channel.call(bigCall(Buffer.alloc(5000)), ending);
    channel.call(bigCall(Buffer.alloc(5000)), ending);
    await nextTurn();
    expect(regions.inUse).toBeGreaterThan(0);
    stream.emit('error', { details: 'socket closed' });
    expect(regions.inUse).toBe(0);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])(
    'keeps slots and answers straight through a random interleaving of calls, answers, chunks and cancels (seed %i)',
    async (seed) => {
      const prng = new Prng(seed);
      const holds = new Map<number, number>(); // call id -> bytes it placed in the host region
      const endedIds = new Set<number>();
      let outOffset = 0;
      const sentOffsets: number[] = [];
      const worker: CallListener = { chunk: () => undefined, end: (message) => endedIds.add(Number(message.id)), broken: () => undefined };
      /** A worker-region slot the "worker" fills: the host must read it and hand it back. */
      const shared = (length: number) => {
        const offset = outOffset;
        outOffset += 64 * Math.ceil(length / 64);
        writeFileSync(regions.outPath, Buffer.alloc(outOffset, 1));
        sentOffsets.push(offset);
        return { path: [], dtype: 'bytes', shape: [], data: Buffer.alloc(0), shared: { offset, length } };
      };
      for (let step = 0; step < 120; step++) {
        const live = [...holds.keys()].filter((id) => !endedIds.has(id));
        const action = live.length === 0 ? 'call' : prng.weighted({ call: 3, result: 2, chunk: 2, error: 1, cancelled: 1 });
        if (action === 'call') {
          const size = prng.pick([10, 2_000, 9_000, 30_000])!;
          const id = channel.call(bigCall(Buffer.alloc(size, step)), worker)!;
          // A call its region cannot take ends with RESOURCE_EXHAUSTED, holding nothing.
          holds.set(id, size >= threshold ? size : 0);
        } else {
          const id = prng.pick(live)!;
          const value = () => ({ json: Buffer.from('null'), blobs: [shared(prng.int(1, 3_000))] });
          if (action === 'chunk') answer({ id, kind: 'chunk', chunk: { value: value(), seq: 0 } });
          else if (action === 'result') answer({ id, kind: 'result', result: { value: value(), session: null } });
          else if (action === 'error')
            answer({ id, kind: 'error', error: { error: { code: 'X', message: 'x', python: null, detailsJson: Buffer.from('{}') }, session: null } });
          else answer({ id, kind: 'cancelled', cancelled: { reason: 'asked' } });
        }
        await Promise.resolve();
        // The host region holds exactly the slots of the calls still running (aligned up), never those of ended calls.
        const held = [...holds].filter(([id]) => !endedIds.has(id)).reduce((sum, [, bytes]) => sum + 64 * Math.ceil(bytes / 64), 0);
        expect(regions.inUse).toBe(held);
      }
      for (const id of [...holds.keys()].filter((call) => !endedIds.has(call))) answer({ id, kind: 'cancelled', cancelled: { reason: 'done' } });
      await nextTurn();
      expect(regions.inUse).toBe(0);
      // Every worker-region slot the host received went back, once, in order.
      const released = stream.frames.flat().flatMap((message) => (message.release?.offsets ?? []).map(Number));
      expect(released).toEqual(sentOffsets);
      expect(new Set(released).size).toBe(released.length);
    },
  );

  it('removes both region files on close', () => {
    expect(existsSync(regions.inPath) && existsSync(regions.outPath)).toBe(true);
    regions.close();
    expect(existsSync(regions.inPath) || existsSync(regions.outPath)).toBe(false);
  });
});
