import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import * as protobuf from 'protobufjs';
import type { HostFrame } from './generated/snakepit/bridge/v1/HostFrame';
import type { HostMessage } from './generated/snakepit/bridge/v1/HostMessage';
import { hostMessageBytes } from './frame-size';
import { WorkerChannel, type CallListener } from './worker-channel';

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
function recordingChannel(maxMessageBytes: number, onBroken: () => void = () => undefined): { channel: WorkerChannel; stream: RecordingStream } {
  const channel = new WorkerChannel('unix:///nonexistent/snakepit-test.sock', 'token', maxMessageBytes);
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
