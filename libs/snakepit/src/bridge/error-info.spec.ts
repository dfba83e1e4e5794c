import { errorFromWorker } from './error-info';

describe('errorFromWorker', () => {
  it('keeps a Python exception whole in typed fields', () => {
    const error = errorFromWorker({
      code: 'PYTHON_EXCEPTION',
      message: 'boom',
      detailsJson: Buffer.from('{"hint":"x"}'),
      python: {
        type: 'ValueError',
        message: 'boom',
        traceback: 'Traceback (most recent call last):\n  ...\nValueError: boom\n',
        chain: [{ type: 'KeyError', message: "'k'", relation: 'cause' }],
      },
    });
    expect(error.code).toBe('PYTHON_EXCEPTION');
    expect(error.message).toBe('ValueError: boom');
    expect(error.python?.type).toBe('ValueError');
    expect(error.python?.traceback).toContain('Traceback');
    expect(error.python?.chain[0]).toEqual({ type: 'KeyError', message: "'k'", relation: 'cause' });
    expect(error.details).toEqual({ hint: 'x' });
    expect(error.httpStatus).toBe(500);
  });

  it('maps a known code to its status and hides tracebacks unless asked', () => {
    const error = errorFromWorker({ code: 'INVALID_ARGUMENTS', message: 'a is required', detailsJson: Buffer.alloc(0), python: null });
    expect(error.httpStatus).toBe(400);
    expect(error.grpcStatus).toBe(3);
    const withPython = errorFromWorker({
      code: 'PYTHON_EXCEPTION',
      message: 'x',
      detailsJson: Buffer.alloc(0),
      python: { type: 'RuntimeError', message: 'x', traceback: 'TB', chain: [] },
    });
    expect(withPython.toBody({ exposeTracebacks: false }).error.python).not.toHaveProperty('traceback');
    expect(withPython.toBody({ exposeTracebacks: true }).error.python?.traceback).toBe('TB');
  });

  it('treats an unknown code from a newer worker as a Python exception', () => {
    expect(errorFromWorker({ code: 'SOMETHING_NEW', message: 'm', detailsJson: Buffer.alloc(0), python: null }).code).toBe('PYTHON_EXCEPTION');
  });
});
