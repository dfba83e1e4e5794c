import { SnakepitConfigError } from '../options/resolve-options';
import { CLUSTER_DEFAULTS, parseHostPort, resolveClusterOptions } from './cluster-options';

const valid = { redis: 'redis://127.0.0.1:6379/0', secret: 'a-secret-of-16-chars' };

describe('resolveClusterOptions', () => {
  it('fills in the defaults', () => {
    const resolved = resolveClusterOptions(valid);
    expect(resolved).toMatchObject({ ...valid, ...CLUSTER_DEFAULTS });
    expect(resolved.nodeId).toMatch(/-\d+$/);
    expect(resolved.advertiseAddress).toBeUndefined();
  });

  it('lists every problem at once', () => {
    let thrown: unknown;
    try {
      resolveClusterOptions({ redis: 'http://x', secret: 'short', nodeId: 'bad id', listen: 'nope', heartbeatIntervalMs: 1000, nodeTtlMs: 1500 });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SnakepitConfigError);
    const problems = (thrown as SnakepitConfigError).problems.join('\n');
    for (const field of ['cluster.redis', 'cluster.secret', 'cluster.nodeId', 'cluster.listen', 'cluster.nodeTtlMs']) expect(problems).toContain(field);
  });

  it('needs an address others can dial when listening on every interface', () => {
    expect(() => resolveClusterOptions({ ...valid, listen: '0.0.0.0:7000' })).toThrow(/advertiseAddress is required/);
    expect(() => resolveClusterOptions({ ...valid, listen: '0.0.0.0:7000', advertiseAddress: '0.0.0.0:7000' })).toThrow(/advertiseAddress must be/);
    expect(resolveClusterOptions({ ...valid, listen: '0.0.0.0:7000', advertiseAddress: 'node-1.internal:7000' }).advertiseAddress).toBe('node-1.internal:7000');
  });
});

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['node-1.internal:7000', { host: 'node-1.internal', port: 7000 }],
    ['[::1]:7000', { host: '[::1]', port: 7000 }],
    ['127.0.0.1', undefined],
    ['host:70000', undefined],
  ])('%s', (address, expected) => expect(parseHostPort(address)).toEqual(expected));
});
