import { readFileSync } from 'node:fs';
import { TestPki, type Issued } from '../../../../test/helpers/test-pki';
import { SnakepitConfigError } from '../options/resolve-options';
import { CLUSTER_DEFAULTS, parseHostPort, resolveClusterOptions, type ClusterOptions, type ClusterTlsOptions } from './cluster-options';

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

describe('security options', () => {
  let pki: TestPki;
  let node: Issued;
  let other: Issued;

  beforeAll(() => {
    pki = TestPki.create();
    node = pki.issue('node-a');
    other = pki.issue('node-b');
  });
  afterAll(() => pki.dispose());

  const problemsOf = (options: Partial<ClusterOptions>, env: NodeJS.ProcessEnv = {}): string => {
    try {
      resolveClusterOptions({ ...valid, ...options }, env);
    } catch (error) {
      return (error as SnakepitConfigError).problems.join('\n');
    }
    return '';
  };

  it('takes TLS material as file paths or PEM text, mutual by default', () => {
    const fromFiles = resolveClusterOptions({ ...valid, tls: { ca: pki.ca, cert: node.cert, key: node.key } });
    const fromPem = resolveClusterOptions({ ...valid, tls: { ca: readFileSync(pki.ca, 'utf8'), cert: readFileSync(node.cert, 'utf8'), key: node.key } });
    expect(fromFiles.tls).toEqual(fromPem.tls);
    expect(fromFiles.tls).toMatchObject({ requireClientCert: true, ca: readFileSync(pki.ca) });
    expect(resolveClusterOptions({ ...valid, tls: { ca: pki.ca, cert: node.cert, key: node.key, requireClientCert: false } }).tls?.requireClientCert).toBe(
      false,
    );
  });

  it('refuses half a TLS configuration, naming what is missing, and a key of another certificate', () => {
    expect(problemsOf({ tls: { ca: pki.ca, cert: node.cert } as ClusterTlsOptions })).toMatch(/cluster\.tls is missing cluster\.tls\.key/);
    expect(problemsOf({ tls: { cert: node.cert } as ClusterTlsOptions })).toMatch(/cluster\.tls\.ca, cluster\.tls\.key/);
    expect(problemsOf({ tls: { ca: '/nonexistent/ca.pem', cert: node.cert, key: node.key } })).toMatch(
      /cluster\.tls\.ca: cannot read "\/nonexistent\/ca\.pem" \(ENOENT\)/,
    );
    expect(problemsOf({ tls: { ca: pki.ca, cert: node.cert, key: other.key } })).toMatch(/cluster\.tls: .*key/i);
  });

  it('refuses plaintext with NODE_ENV=production unless allowPlaintext is set', () => {
    expect(problemsOf({}, { NODE_ENV: 'production' })).toMatch(/cluster\.tls is required with NODE_ENV=production/);
    expect(problemsOf({ allowPlaintext: true }, { NODE_ENV: 'production' })).toBe('');
    expect(problemsOf({ tls: { ca: pki.ca, cert: node.cert, key: node.key } }, { NODE_ENV: 'production' })).toBe('');
    expect(problemsOf({}, {})).toBe('');
  });

  it('verifies with the secret first, then the accepted ones, each long enough', () => {
    expect(resolveClusterOptions({ ...valid, acceptedSecrets: ['previous-secret-0123', valid.secret] }).verifySecrets).toEqual([
      valid.secret,
      'previous-secret-0123',
    ]);
    expect(problemsOf({ acceptedSecrets: ['short'] })).toMatch(/cluster\.acceptedSecrets must be an array of strings of at least 16/);
  });

  it('takes Redis TLS only with a rediss:// URL, and a client certificate only with its key', () => {
    expect(resolveClusterOptions({ ...valid, redis: 'rediss://user:pw@127.0.0.1:6380', redisTls: { ca: pki.ca } }).redisTls).toEqual({
      ca: readFileSync(pki.ca),
    });
    expect(problemsOf({ redisTls: { ca: pki.ca } })).toMatch(/cluster\.redisTls is set but cluster\.redis is not a rediss:\/\/ URL/);
    expect(problemsOf({ redis: 'rediss://127.0.0.1:6380', redisTls: { cert: node.cert } })).toMatch(/cluster\.redisTls\.key is missing/);
  });
});
