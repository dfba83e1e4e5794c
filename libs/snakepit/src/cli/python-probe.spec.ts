import { expect } from '@jest/globals';
import { runPythonProbe } from './python-probe';

// Any Python 3 will do: the probe machinery needs no package.
const python = 'python3';

describe('runPythonProbe', () => {
  it('returns the JSON answer, whatever the probed code prints on stdout', async () => {
    const outcome = await runPythonProbe(python, 'print("noise from an import")\nanswer({"argv": sys.argv[1:]})', ['a', 'b c']);
    expect(outcome).toEqual({ ok: true, answer: { argv: ['a', 'b c'] } });
  });

  it('turns exceptions into values with attempt()', async () => {
    const outcome = await runPythonProbe(python, 'answer(attempt(lambda: __import__("no_such_module_here")))');
    expect(outcome).toEqual({ ok: true, answer: { ok: false, error: "ModuleNotFoundError: No module named 'no_such_module_here'" } });
  });

  it('kills a probe that does not answer in time', async () => {
    // A 30 s sleep: had the probe been waited for, the test's own 5 s timeout would fail first.
    const outcome = await runPythonProbe(python, 'import time\ntime.sleep(30)', [], 300);
    expect(outcome).toEqual({ ok: false, problem: 'it did not answer within 0.3 s and was killed' });
  });

  it('does not wait for a probe that reads stdin', async () => {
    expect(await runPythonProbe(python, 'answer(sys.stdin.read())')).toEqual({ ok: true, answer: '' });
  });

  it('reports the exit code and the end of stderr of a probe that crashes', async () => {
    const outcome = await runPythonProbe(python, 'raise SystemExit("adapter exploded")');
    expect(outcome).toEqual({ ok: false, problem: 'it exited with code 1: adapter exploded' });
  });

  it('reports an answer that is not JSON, and an interpreter that cannot start', async () => {
    expect(await runPythonProbe(python, 'answer_to.write("not json")')).toEqual({ ok: false, problem: 'it answered something that is not JSON: "not json"' });
    const missing = await runPythonProbe('/nonexistent/python', '');
    expect(missing).toMatchObject({ ok: false, problem: expect.stringContaining('it cannot be started: ENOENT') });
  });
});
