/**
 * The per-host watchdog, run as its own small Node process:
 *   node watchdog.js <registry-file> <run-id> [<socket-base-dir>|''] [<shared-memory-base-dir>|'']
 * Its stdin is a pipe from the host. When the pipe closes — the host exited,
 * however it died, SIGKILL included — it kills the process groups the registry
 * still records for that run (checking each pid's start time), removes the
 * run's socket and shared-memory directories (only if each lies directly under its base)
 * and the registry, and exits.
 * A host that shuts down cleanly empties the registry first, so nothing is killed.
 */
import { rmSync } from 'node:fs';
import { cleanUpRun, readRegistry } from './process-registry';

const [registryPath, runId, socketBase, sharedBase] = process.argv.slice(2);

function sweep(): void {
  const registry = readRegistry(registryPath);
  if (registry?.runId === runId) {
    cleanUpRun(registry, { socketBase: socketBase || undefined, sharedBase: sharedBase || undefined });
    rmSync(registryPath, { force: true });
  }
  process.exit(0);
}

if (!registryPath || !runId) {
  process.stderr.write("usage: watchdog <registry-file> <run-id> [<socket-base-dir>|''] [<shared-memory-base-dir>|'']\n");
  process.exit(2);
}
// The host's terminal signals must not take the watchdog down before it sweeps.
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);
process.stdin.on('end', sweep);
process.stdin.on('close', sweep);
process.stdin.on('error', sweep);
process.stdin.resume();
