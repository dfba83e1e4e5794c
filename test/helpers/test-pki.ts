import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its key, as files (what the options and the sample app's env take). */
export interface Issued {
  cert: string;
  key: string;
}

/**
 * A throw-away certificate authority in a temp directory, made when a test
 * starts: no key is ever committed. Built with the `openssl` CLI because
 * node:crypto makes keys but cannot issue an X.509 certificate (X509Certificate
 * only reads them). P-256 keys, valid for one day.
 */
export class TestPki {
  readonly ca: string;
  private readonly caKey: string;
  private serial = 1;

  private constructor(
    private readonly dir: string,
    readonly name: string,
  ) {
    this.ca = join(dir, 'ca.crt');
    this.caKey = join(dir, 'ca.key');
    openssl([
      'req',
      '-x509',
      ...newKey(this.caKey),
      '-out',
      this.ca,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }

  static create(name = 'snakepit-test-ca'): TestPki {
    return new TestPki(mkdtempSync(join(tmpdir(), 'snakepit-pki-')), name);
  }

  /**
   * A leaf certificate for `name`, valid for loopback (IP 127.0.0.1, DNS localhost) and
   * any `extraNames`, usable both as a server and as a client (each node is both).
   */
  issue(name: string, extraNames: string[] = []): Issued {
    const base = join(this.dir, `${name}-${this.serial}`);
    const [cert, key, csr, ext] = ['crt', 'key', 'csr', 'ext'].map((suffix) => `${base}.${suffix}`);
    openssl(['req', ...newKey(key), '-out', csr, '-subj', `/CN=${name}`]);
    const names = ['IP:127.0.0.1', 'DNS:localhost', ...extraNames.map((extra) => `DNS:${extra}`)].join(',');
    writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${names}\n`);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.ca,
      '-CAkey',
      this.caKey,
      '-set_serial',
      String(this.serial++),
      '-days',
      '1',
      '-out',
      cert,
      '-extfile',
      ext,
    ]);
    return { cert, key };
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function newKey(keyFile: string): string[] {
  return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile];
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
