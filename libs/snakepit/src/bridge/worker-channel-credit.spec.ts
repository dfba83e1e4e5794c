import { EventEmitter } from 'node:events';
import type { HostFrame } from './generated/snakepit/bridge/v1/HostFrame';
import type { HostMessage } from './generated/snakepit/bridge/v1/HostMessage';
import { WorkerChannel, type CallListener } from './worker-channel';

/** Records the messages the channel writes, in place of the gRPC stream. */
class RecordingStream extends EventEmitter {
  readonly frames: HostMessage[][] = [];
  write(frame: HostFrame): boolean {
    this.frames.push(frame.messages ?? []);
    return true;
  }
  cancel(): void {
    // Nothing in flight: the fake only records the frames written.
  }
}

const listener: CallListener = { chunk: () => undefined, end: () => undefined, broken: () => undefined };
const request = { tool: 'chunks', args: { json: Buffer.from('{}') }, stream: true };
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 5));
const credits = (frame: HostMessage[]) => frame.filter((m) => m.credit).map((m) => [Number(m.id), m.credit!.chunks]);

describe('WorkerChannel stream credit', () => {
  let channel: WorkerChannel;
  let stream: RecordingStream;

  beforeEach(() => {
    // An address nothing listens on: the client never connects, the fake stream stands in.
    channel = new WorkerChannel('unix:///nonexistent/snakepit-test.sock', 'token', 1 << 20);
    stream = new RecordingStream();
    (channel as unknown as { client: { Connect: () => RecordingStream } }).client.Connect = () => stream;
    channel.open(
      () => undefined,
      () => undefined,
    );
  });

  afterEach(() => channel.close('test over'));

  it('merges the credits of one call queued in one flush, and keeps calls apart', async () => {
    const first = channel.call(request, listener)!;
    const second = channel.call(request, listener)!;
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
    const id = channel.call(request, listener)!;
    await nextTurn();
    channel.credit(id, 0);
    channel.credit(id + 100, 5);
    await nextTurn();
    expect(stream.frames).toHaveLength(1);
  });
});
