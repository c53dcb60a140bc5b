import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** One file of a zip archive, as its central directory lists it. */
export interface ZipEntry {
  name: string;
  /** Bytes once extracted. */
  size: number;
}

/** A function's deployment package and what it takes once Lambda unzips it. */
export interface PackageSize {
  function: string;
  zipBytes: number;
  unzippedBytes: number;
  files: number;
}

/** Our budget for any function package, unzipped (Lambda's own limit is 250 MB with layers). */
export const UNZIPPED_BUDGET_BYTES = 60_000_000;

const EOCD = 0x06054b50;
const CENTRAL_HEADER = 0x02014b50;

/**
 * Lists a zip archive's files from its central directory (no extraction, no dependency). Zip64
 * archives are refused: a Lambda package never needs one.
 */
export function zipEntries(zip: Buffer): ZipEntry[] {
  // The end-of-central-directory record is the last 22 bytes, unless a comment follows it.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory)');
  const count = zip.readUInt16LE(eocd + 10);
  const offset = zip.readUInt32LE(eocd + 16);
  if (count === 0xffff || offset === 0xffffffff) throw new Error('zip64 archives are not supported');
  const entries: ZipEntry[] = [];
  let at = offset;
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== CENTRAL_HEADER) throw new Error(`bad central directory entry ${n}`);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    if (size === 0xffffffff) throw new Error('zip64 entries are not supported');
    entries.push({ name: zip.toString('utf8', at + 46, at + 46 + nameLength), size });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

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
