import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { inflateRawSync } from 'node:zlib';

/** One file of a zip archive, as its central directory lists it. */
export interface ZipEntry {
  name: string;
  /** Bytes once extracted. */
  size: number;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const CENTRAL_HEADER = 0x02014b50;

/**
 * Lists a zip archive's files from its central directory (no extraction, no dependency). Zip64
 * archives are refused: a Lambda package, at most 250 MB unzipped, never needs one.
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
    if (size === 0xffffffff) throw new Error('zip64 entries are not supported');
    entries.push({
      name: zip.toString('utf8', at + 46, at + 46 + nameLength),
      size,
      method: zip.readUInt16LE(at + 10),
      compressedSize: zip.readUInt32LE(at + 20),
      localHeaderOffset: zip.readUInt32LE(at + 42),
    });
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return entries;
}

/** Extracts every file (stored or deflated) under `dir`; a name leaving `dir` is refused. */
export function extractZip(zip: Buffer, dir: string): void {
  const root = normalize(dir) + sep;
  for (const e of zipEntries(zip)) {
    if (e.name.endsWith('/')) continue;
    const target = normalize(join(dir, e.name));
    if (!target.startsWith(root)) throw new Error(`zip entry ${e.name} leaves the folder`);
    const header = e.localHeaderOffset;
    const start = header + 30 + zip.readUInt16LE(header + 26) + zip.readUInt16LE(header + 28);
    const raw = zip.subarray(start, start + e.compressedSize);
    const data = e.method === 0 ? raw : e.method === 8 ? inflateRawSync(raw) : undefined;
    if (!data) throw new Error(`zip entry ${e.name}: compression method ${e.method} is not supported`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, data);
  }
}
