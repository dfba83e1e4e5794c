import { readdirSync, readFileSync } from 'node:fs';

/**
 * Resident memory of whole process groups, from /proc, in one pass: a worker's
 * footprint includes any processes its tools started (multiprocessing, native
 * helpers), which a per-pid reading (e.g. the `pidusage` package) would miss.
 * Returns bytes per group id; groups with no live process are absent.
 */
export function processGroupRss(groupIds: Iterable<number>): Map<number, number> {
  const wanted = new Set(groupIds);
  const totals = new Map<number, number>();
  if (wanted.size === 0) return totals;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return totals; // not Linux: no reading, no recycling by memory
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // fields[2] is the process group id.
      const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (!wanted.has(group)) continue;
      const rss = residentBytes(readFileSync(`/proc/${entry}/status`, 'utf8'));
      if (rss !== undefined) totals.set(group, (totals.get(group) ?? 0) + rss);
    } catch {
      // the process exited while we looked
    }
  }
  return totals;
}

/**
 * VmRSS of a /proc/<pid>/status text less its RssShmem, in bytes: the pages
 * of shared-memory regions a worker maps are the run's, not the worker's own
 * growth, and must not get it recycled for memory. The kernel gives both in kB
 * whatever the page size, unlike /proc/<pid>/stat, which counts pages (4, 16
 * or 64 KiB depending on the kernel). Kernel threads have none: undefined.
 */
export function residentBytes(status: string): number | undefined {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) return undefined;
  const shared = /^RssShmem:\s+(\d+) kB$/m.exec(status);
  return (Number(match[1]) - (shared ? Number(shared[1]) : 0)) * 1024;
}
