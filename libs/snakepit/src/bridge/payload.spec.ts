import { SnakepitError } from '../errors/snakepit-error';
import { assertJsonSafe, decodePayload, encodeArgs, MAX_JSON_DEPTH } from './payload';

function errorOf(fn: () => unknown): SnakepitError | undefined {
  try {
    fn();
  } catch (error) {
    return error as SnakepitError;
  }
  return undefined;
}

const codeOf = (fn: () => unknown) => errorOf(fn)?.code;

describe('payload encoding', () => {
  it('sends arguments as compact JSON and keeps integers integral', () => {
    const payload = encodeArgs({ a: 2, b: 3, nested: { list: [1, 'x', null, true] } }, 1024);
    expect(payload.json?.toString()).toBe('{"a":2,"b":3,"nested":{"list":[1,"x",null,true]}}');
    expect(decodePayload({ json: Buffer.from('{"result":5}'), blobs: [] })).toEqual({ result: 5 });
  });

  it('sends a Buffer untouched as binary', () => {
    const payload = encodeArgs(Buffer.from([0, 255, 7]), 1024);
    expect(payload.binary).toEqual(Buffer.from([0, 255, 7]));
    expect(decodePayload({ binary: Buffer.from([1, 2]), blobs: [] })).toEqual(Buffer.from([1, 2]));
  });

  it('rejects values JSON would silently change, naming the path', () => {
    for (const bad of [{ a: NaN }, { a: Infinity }, { a: [1, undefined] }, { a: new Map() }, { a: () => 1 }, { a: 10n }]) {
      expect(codeOf(() => assertJsonSafe(bad))).toBe('SERIALIZATION_ERROR');
    }
    expect(errorOf(() => encodeArgs({ outer: { list: [0, NaN] } }, 1024))?.details.path).toBe('$.outer.list[1]');
  });

  it('refuses nesting deeper than the limit', () => {
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_JSON_DEPTH + 1; i++) deep = [deep];
    expect(codeOf(() => encodeArgs({ deep }, 1 << 20))).toBe('INVALID_ARGUMENTS');
  });

  it('refuses arguments that are not an object, and payloads over the limit', () => {
    expect(codeOf(() => encodeArgs([1, 2], 1024))).toBe('INVALID_ARGUMENTS');
    expect(codeOf(() => encodeArgs('text', 1024))).toBe('INVALID_ARGUMENTS');
    expect(codeOf(() => encodeArgs({ text: 'x'.repeat(100) }, 50))).toBe('PAYLOAD_TOO_LARGE');
    expect(codeOf(() => encodeArgs(Buffer.alloc(51), 50))).toBe('PAYLOAD_TOO_LARGE');
  });
});
