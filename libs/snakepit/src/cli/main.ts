#!/usr/bin/env node
/**
 * The `snakepit` command shipped with @snakepit/nestjs:
 *   snakepit doctor [--python PATH] [--adapter module:Class] [--socket-dir DIR] [--json]
 *   snakepit new-adapter NAME [--dir DIR]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatReport, hasFailure } from './check';
import { libraryVersion, runDoctor } from './doctor';
import { createAdapter, NewAdapterError, nextSteps } from './new-adapter';

export const USAGE = `Usage: snakepit <command> [options]

Commands:
  doctor [--python PATH] [--adapter module:Class] [--socket-dir DIR] [--json]
      Check the Python interpreter (default: .venv/bin/python if present, else python3),
      its packages and generated stubs, an adapter, the socket directory and shared memory.
      Exits with 1 when a check fails.
  new-adapter NAME [--dir DIR]
      Write a commented adapter skeleton with pytest tests to DIR/NAME (DIR: the current directory).

Options:
  -h, --help       show this help
  -v, --version    show the version
`;

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Runs one command; resolves the process exit code (2: the command line is wrong). */
export async function main(argv: readonly string[], output: Output = processOutput): Promise<number> {
  const [command, ...rest] = argv;
  if (rest.includes('-h') || rest.includes('--help')) {
    output.out(USAGE);
    return 0;
  }
  try {
    switch (command) {
      case 'doctor':
        return await doctor(rest, output);
      case 'new-adapter':
        return newAdapter(rest, output);
      case '-h':
      case '--help':
        output.out(USAGE);
        return 0;
      case '-v':
      case '--version':
        output.out(`${libraryVersion()}\n`);
        return 0;
      default:
        output.err(`${command === undefined ? 'snakepit: no command given' : `snakepit: unknown command ${JSON.stringify(command)}`}\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (isParseArgsError(error)) {
      output.err(`snakepit ${command}: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof NewAdapterError) {
      output.err(`snakepit ${command}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

async function doctor(args: string[], output: Output): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      python: { type: 'string' },
      adapter: { type: 'string' },
      'socket-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const checks = await runDoctor({ python: values.python, adapter: values.adapter, socketDir: values['socket-dir'] });
  const ok = !hasFailure(checks);
  if (values.json) {
    output.out(`${JSON.stringify({ ok, version: libraryVersion(), checks }, null, 2)}\n`);
  } else {
    output.out(`snakepit doctor (@snakepit/nestjs ${libraryVersion()}) in ${process.cwd()}\n\n${formatReport(checks)}`);
  }
  return ok ? 0 : 1;
}

function newAdapter(args: string[], output: Output): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { dir: { type: 'string', default: '.' } } });
  if (positionals.length !== 1) {
    output.err(`snakepit new-adapter: give exactly one NAME, e.g. snakepit new-adapter my_models\n\n${USAGE}`);
    return 2;
  }
  const created = createAdapter(positionals[0], values.dir);
  output.out(nextSteps(created, resolve(values.dir)));
  return 0;
}

/** parseArgs' TypeError for a bad command line (checked by code: under Jest it comes from another realm's TypeError). */
function isParseArgsError(error: unknown): error is { code: string; message: string } {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string' &&
    error.code.startsWith('ERR_PARSE_ARGS') &&
    'message' in error
  );
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
