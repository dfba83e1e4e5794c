import { fail, formatReport, hasFailure, pass, skip, warn } from './check';

describe('doctor report', () => {
  const checks = [
    pass('python', '/usr/bin/python3: Python 3.12.1'),
    warn('virtualenv', 'system-wide interpreter', 'python3 -m venv .venv'),
    fail('grpcio', 'not importable', 'python3 -m pip install grpcio'),
    skip('stubs', 'needs grpcio'),
  ];

  it('prints one aligned line per check, its fix below it, then the totals', () => {
    expect(formatReport(checks)).toBe(
      [
        'PASS  python      /usr/bin/python3: Python 3.12.1',
        'WARN  virtualenv  system-wide interpreter',
        '                  fix: python3 -m venv .venv',
        'FAIL  grpcio      not importable',
        '                  fix: python3 -m pip install grpcio',
        'SKIP  stubs       needs grpcio',
        '',
        '1 PASS, 1 WARN, 1 FAIL, 1 SKIP',
        '',
      ].join('\n'),
    );
  });

  it('fails only when a check failed: warnings and skips do not', () => {
    expect(hasFailure(checks)).toBe(true);
    expect(hasFailure(checks.filter((check) => check.status !== 'FAIL'))).toBe(false);
  });
});
