import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processGroupRss, residentBytes } from './process-stats';

const PYTHON = join(__dirname, '..', '..', '..', '..', '.venv', 'bin', 'python');

describe('processGroupRss', () => {
  it('reads VmRSS in kB, which does not depend on the page size', () => {
    // As a 64 KiB-page kernel reports it: /proc/<pid>/stat would say 1600 pages, not 409600 bytes.
    expect(residentBytes('Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nRssAnon:\t 90000 kB\n')).toBe(102_400 * 1024);
    expect(residentBytes('Name:\tkthreadd\nState:\tS (sleeping)\n')).toBeUndefined();
  });

  it('leaves out the shared-memory pages the worker maps (RssShmem): the regions are not its own growth', () => {
    expect(residentBytes('VmRSS:\t  102400 kB\nRssAnon:\t 30000 kB\nRssFile:\t 8400 kB\nRssShmem:\t 64000 kB\n')).toBe(38_400 * 1024);
  });

  it('sums the resident memory of a whole process group', async () => {
    // A group leader holding 64 MiB it has written to (so the pages are resident), and a child of its own.
    const script =
      'import subprocess, sys, time\nb = bytearray(b"\\x01") * (64 * 1024 * 1024)\nsubprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])\nprint("ready", flush=True)\ntime.sleep(30)\n';
    const leader = spawn(PYTHON, ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise((resolve) => leader.stdout.once('data', resolve));
      const rss = processGroupRss([leader.pid!]).get(leader.pid!);
      expect(rss).toBeGreaterThan(64 * 1024 * 1024);
      // The child's memory counts too.
      expect(rss).toBeGreaterThan(residentBytes(readFileSync(`/proc/${leader.pid}/status`, 'utf8'))!);
      expect(processGroupRss([999_999_999]).size).toBe(0);
    } finally {
      process.kill(-leader.pid!, 'SIGKILL');
    }
  });
});
