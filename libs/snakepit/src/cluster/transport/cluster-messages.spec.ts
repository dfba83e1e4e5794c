import { SnakepitError } from '../../errors/snakepit-error';
import { clusterNodeService } from './cluster-proto';
import type { ForwardedCall, ForwardedCall__Output, ForwardedFrame, ForwardedFrame__Output, ForwardedReply, ForwardedReply__Output } from './cluster-messages';
import { decodeError, encodeError, encodeValue } from './wire-values';

/** Serializes with the real proto and reads back as proto-loader delivers messages. */
function roundTrip<In, Out>(method: 'Execute' | 'ExecuteStream', side: 'request' | 'response', message: In): Out {
  const definition = clusterNodeService().service[method];
  const bytes = side === 'request' ? definition.requestSerialize(message) : definition.responseSerialize(message);
  return (side === 'request' ? definition.requestDeserialize(bytes) : definition.responseDeserialize(bytes)) as Out;
}

describe('cluster wire messages through cluster.proto', () => {
  it('carries every field of a forwarded call', () => {
    const call: Required<Omit<ForwardedCall, '_timeoutMs'>> = {
      tool: 'predict',
      args: { json: Buffer.from('{"x":1}') },
      pool: 'inference',
      sessionId: 'sess_1',
      timeoutMs: 1234.5,
      metadata: { traceparent: '00-abc-def-01' },
      idempotent: true,
      originNode: 'node-a',
    };
    const decoded = roundTrip<ForwardedCall, ForwardedCall__Output>('Execute', 'request', call);
    expect(decoded).toMatchObject({ ...call, args: { json: Buffer.from('{"x":1}') } });
  });

  it('tells an absent budget from any given one, so the node can refuse a bad one as a local call would', () => {
    expect(roundTrip<ForwardedCall, ForwardedCall__Output>('Execute', 'request', { tool: 't' }).timeoutMs).toBeUndefined();
    expect(roundTrip<ForwardedCall, ForwardedCall__Output>('Execute', 'request', { tool: 't', timeoutMs: -5 }).timeoutMs).toBe(-5);
    expect(roundTrip<ForwardedCall, ForwardedCall__Output>('Execute', 'request', { tool: 't', timeoutMs: 0 }).timeoutMs).toBe(0);
  });

  it('carries a result, a chunk and an error frame', () => {
    const reply = roundTrip<ForwardedReply, ForwardedReply__Output>('Execute', 'response', {
      nodeId: 'node-c',
      result: { value: encodeValue({ ok: [1, 2] }), workerId: 'inference-1', pid: 42 },
    });
    expect(reply).toMatchObject({ nodeId: 'node-c', outcome: 'result', result: { workerId: 'inference-1', pid: 42 } });
    expect(JSON.parse(reply.result!.value!.json!.toString())).toEqual({ ok: [1, 2] });

    const chunk = roundTrip<ForwardedFrame, ForwardedFrame__Output>('ExecuteStream', 'response', {
      chunk: { value: encodeValue(Buffer.from([1, 2])), seq: 7 },
    });
    expect(chunk).toMatchObject({ kind: 'chunk', chunk: { seq: 7, value: { binary: Buffer.from([1, 2]) } } });

    const error = roundTrip<ForwardedFrame, ForwardedFrame__Output>('ExecuteStream', 'response', { error: encodeError(new SnakepitError('TIMEOUT', 'late')) });
    expect(error.kind).toBe('error');
  });
});

describe('errors across nodes', () => {
  it('rebuild the SnakepitError the node raised, Python exception included, naming the node', () => {
    const python = {
      type: 'KeyError',
      message: "'x'",
      traceback: 'Traceback...\nKeyError: ...',
      chain: [{ type: 'ValueError', message: 'v', relation: 'cause' }],
    };
    const original = new SnakepitError('PYTHON_EXCEPTION', "KeyError: 'x'", { details: { pool: 'p', workerId: 'p-1' }, python });
    const frame = roundTrip<ForwardedReply, ForwardedReply__Output>('Execute', 'response', { nodeId: 'node-c', error: encodeError(original) });
    const rebuilt = decodeError(frame.error, frame.nodeId);
    expect(rebuilt).toBeInstanceOf(SnakepitError);
    expect(rebuilt).toMatchObject({ code: original.code, message: original.message, python, details: { ...original.details, node: 'node-c' } });
  });

  it('keep codes and messages that carry no Python exception', () => {
    const original = new SnakepitError('QUEUE_FULL', 'Pool p is full', { details: { pool: 'p', depth: 3 } });
    const rebuilt = decodeError(roundTrip<ForwardedReply, ForwardedReply__Output>('Execute', 'response', { error: encodeError(original) }).error, 'node-b');
    expect(rebuilt).toMatchObject({ code: 'QUEUE_FULL', message: 'Pool p is full', python: undefined, details: { pool: 'p', depth: 3, node: 'node-b' } });
  });
});
