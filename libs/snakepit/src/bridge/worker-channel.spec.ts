import { EventEmitter } from 'node:events';
import type { HostFrame } from './generated/snakepit/bridge/v1/HostFrame';
import { WorkerChannel, type CallListener } from './worker-channel';

/** Records the frames the channel writes, in place of the gRPC stream. */
class RecordingStream extends EventEmitter {
  readonly frames: number[][] = [];
  write(frame: HostFrame): boolean {
    this.frames.push((frame.messages ?? []).map((message) => Number(message.id)));
    return true;
  }
  cancel(): void {}
}

const listener: CallListener = { chunk: () => undefined, end: () => undefined, broken: () => undefined };
const request = { tool: 'add', args: { json: Buffer.from('{}') } };
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('WorkerChannel frames', () => {
  let channel: WorkerChannel;
  let stream: RecordingStream;

  beforeEach(() => {
    // An address nothing listens on: the client never connects, the fake stream stands in.
    channel = new WorkerChannel('unix:///nonexistent/snakepit-test.sock', 'token', 1 << 20);
    stream = new RecordingStream();
    (channel as unknown as { client: { Connect: () => RecordingStream } }).client.Connect = () => stream;
    channel.open(() => undefined, () => undefined);
  });

  afterEach(() => channel.close('test over'));

  it('sends a call on an idle stream within the same tick', async () => {
    channel.call(request, listener);
    await Promise.resolve();
    expect(stream.frames).toEqual([[1]]);
  });

  it('puts calls started in one tick into one frame', async () => {
    for (let i = 0; i < 3; i++) channel.call(request, listener);
    await nextTurn();
    expect(stream.frames).toEqual([[1, 2, 3]]);
  });

  it('on a busy stream, coalesces calls started by separate callbacks of one event-loop turn', async () => {
    channel.call(request, listener); // stays in flight: the stream is busy from now on
    await nextTurn();
    // Two timers due together run as two callbacks of one turn, as two HTTP requests read together do.
    setTimeout(() => channel.call(request, listener), 0);
    setTimeout(() => channel.call(request, listener), 0);
    await nextTurn();
    expect(stream.frames).toEqual([[1], [2, 3]]);
  });
});
