import { execFile, type ExecFileException } from 'node:child_process';

/** How long one probe may take: long enough to import a heavy adapter, short enough that doctor never hangs. */
export const PROBE_TIMEOUT_MS = 15_000;

/**
 * Put before every probe script. Whatever imported code prints goes to stderr,
 * so the one JSON line the script writes to `answer_to` is all stdout carries;
 * `attempt` turns any exception (imports can raise anything) into a reportable value.
 * Plain Python 3 syntax, so that an interpreter too old for Snakepit still answers.
 */
export const PROBE_PREAMBLE = `
import json
import sys

answer_to = sys.stdout
sys.stdout = sys.stderr


def describe_error(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def attempt(action):
    try:
        return {"ok": True, "value": action()}
    except BaseException as exc:
        return {"ok": False, "error": describe_error(exc)}


def answer(value):
    answer_to.write(json.dumps(value) + "\\n")
    answer_to.flush()
`;

export type ProbeOutcome = { ok: true; answer: unknown } | { ok: false; problem: string };

/**
 * Runs `python -c <preamble + script> ...args` in the current directory (as a
 * worker would see it: the cwd is on sys.path) and parses the JSON line it
 * answers with. Never rejects: a missing interpreter, a crash, a timeout or an
 * unreadable answer becomes `{ ok: false, problem }`.
 */
export function runPythonProbe(python: string, script: string, args: readonly string[] = [], timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const child = execFile(
      python,
      ['-c', PROBE_PREAMBLE + script, ...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          resolve({ ok: false, problem: describeFailure(error, stderr, timeoutMs) });
          return;
        }
        const lastLine = stdout.trimEnd().split('\n').at(-1) ?? '';
        try {
          resolve({ ok: true, answer: JSON.parse(lastLine) as unknown });
        } catch {
          resolve({ ok: false, problem: `it answered something that is not JSON: ${JSON.stringify(lastLine.slice(0, 200))}${lastWords(stderr)}` });
        }
      },
    );
    // A probe never reads stdin; closing it keeps an import that does from waiting on it.
    child.stdin?.end();
  });
}

function describeFailure(error: ExecFileException, stderr: string, timeoutMs: number): string {
  if (error.killed) return `it did not answer within ${timeoutMs / 1000} s and was killed`;
  if (typeof error.code === 'string') return `it cannot be started: ${error.code} (${error.message})`;
  if (error.signal) return `it was killed by ${error.signal}${lastWords(stderr)}`;
  return `it exited with code ${String(error.code)}${lastWords(stderr)}`;
}

/** The end of stderr, where Python puts the exception that stopped it. */
function lastWords(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean).slice(-3);
  return lines.length > 0 ? `: ${lines.join(' | ')}` : '';
}
