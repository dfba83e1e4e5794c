// @ts-check
// python-shell (npm) in JSON mode: one long-running interpreter per worker,
// requests tagged with ids so several are in flight at once. This is the
// fastest honest way Node users drive Python with it today.
import { PythonShell } from 'python-shell';
import { PY_DIR, PY_ENV, PYTHON, leastOutstanding } from './raw-grpc.mjs';
import { registerPids, stopChild, unregisterPids } from './procs.mjs';

class ShellConn {
  constructor() {
    this.shell = new PythonShell('stdio_worker.py', {
      mode: 'json',
      pythonPath: PYTHON,
      pythonOptions: ['-u'],
      scriptPath: PY_DIR,
      env: PY_ENV,
    });
    /** @type {Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>} */
    this.pending = new Map();
    this.nextId = 1;
    this.shell.on('message', (/** @type {any} */ msg) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(msg.error));
    });
    const failAll = (/** @type {Error} */ e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.shell.on('error', failAll);
    this.shell.on('pythonError', failAll);
    this.shell.on('close', () => failAll(new Error('python-shell closed')));
    // python-shell owns the child; remember its pid so an abrupt exit still kills it
    registerPids([this.pid]);
  }

  get pid() {
    return /** @type {number} */ (this.shell.childProcess.pid);
  }

  get inflight() {
    return this.pending.size;
  }

  /** @param {string} tool @param {object} args @returns {Promise<unknown>} */
  call(tool, args) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.shell.send({ id, tool, args });
    });
  }

  async close() {
    await stopChild(this.shell.childProcess);
    unregisterPids([this.pid]);
  }
}

/** @param {number} n */
export async function pyshellPool(n) {
  const conns = Array.from({ length: n }, () => new ShellConn());
  // one round trip each, so the interpreter is up before measuring
  await Promise.all(conns.map((c) => c.call('add', { a: 1, b: 2 })));
  const router = leastOutstanding(conns);
  return {
    pids: conns.map((c) => c.pid),
    call: router.call,
    close: () => Promise.all(conns.map((c) => c.close())).then(() => undefined),
  };
}
