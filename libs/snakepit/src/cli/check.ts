/** One line of the `doctor` report: what was checked, how it went, and how to fix it. */
export type CheckStatus = 'PASS' | 'WARN' | 'FAIL' | 'SKIP';

export interface Check {
  name: string;
  status: CheckStatus;
  message: string;
  /** What to do about a WARN or FAIL. */
  fix?: string;
}

export const pass = (name: string, message: string): Check => ({ name, status: 'PASS', message });
export const warn = (name: string, message: string, fix: string): Check => ({ name, status: 'WARN', message, fix });
export const fail = (name: string, message: string, fix: string): Check => ({ name, status: 'FAIL', message, fix });
/** A check that could not run because one it depends on failed. */
export const skip = (name: string, message: string): Check => ({ name, status: 'SKIP', message });

export function hasFailure(checks: readonly Check[]): boolean {
  return checks.some((check) => check.status === 'FAIL');
}

/** The human-readable report: one aligned line per check, its fix indented below, then the totals. */
export function formatReport(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((check) => check.name.length));
  const lines = checks.flatMap((check) => {
    const line = `${check.status}  ${check.name.padEnd(width)}  ${check.message}`;
    return check.fix ? [line, `${' '.repeat(width + 8)}fix: ${check.fix}`] : [line];
  });
  const statuses: CheckStatus[] = ['PASS', 'WARN', 'FAIL', 'SKIP'];
  const totals = statuses.map((status) => `${checks.filter((check) => check.status === status).length} ${status}`);
  return `${lines.join('\n')}\n\n${totals.join(', ')}\n`;
}
