import { readdirSync, readFileSync } from 'node:fs';

const PAGE_SIZE = 4096;

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
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[2] is the process group id, fields[21] the resident set in pages.
      const group = Number(fields[2]);
      if (!wanted.has(group)) continue;
      totals.set(group, (totals.get(group) ?? 0) + Number(fields[21]) * PAGE_SIZE);
    } catch {
      // the process exited while we looked
    }
  }
  return totals;
}
