import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { zipEntries } from './zip.js';

/** A function's deployment package and what it takes once Lambda unzips it. */
export interface PackageSize {
  function: string;
  zipBytes: number;
  unzippedBytes: number;
  files: number;
}

/** Our budget for any function package, unzipped (Lambda's own limit is 250 MB with layers). */
export const UNZIPPED_BUDGET_BYTES = 60_000_000;

/** The size of every function package (`<function>.zip`) in a `sls package` output folder. */
export function packageSizes(dir: string): PackageSize[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.zip'))
    .sort()
    .map((file) => {
      const zip = readFileSync(join(dir, file));
      const entries = zipEntries(zip);
      return {
        function: basename(file, '.zip'),
        zipBytes: zip.length,
        unzippedBytes: entries.reduce((sum, e) => sum + e.size, 0),
        files: entries.length,
      };
    });
}

/** Megabytes (10^6 bytes) with one decimal, as the sizes are reported. */
export function mb(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** A table of the sizes, for the terminal. */
export function formatSizes(sizes: readonly PackageSize[]): string {
  const rows = sizes.map((s) => [s.function, mb(s.zipBytes), mb(s.unzippedBytes), String(s.files)]);
  const header = ['function', 'zip', 'unzipped', 'files'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** The packages over `budget` bytes unzipped, as messages. */
export function overBudget(sizes: readonly PackageSize[], budget = UNZIPPED_BUDGET_BYTES): string[] {
  return sizes
    .filter((s) => s.unzippedBytes > budget)
    .map((s) => `${s.function}: ${mb(s.unzippedBytes)} unzipped, over the ${mb(budget)} budget`);
}
