import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadManifest } from '../../functions/core/manifest.js';

/** The repository root (this file is `<root>/bench/lib/data.ts`). */
export const ROOT = resolve(import.meta.dirname, '../..');
export const MODELS_MANIFEST = resolve(ROOT, 'models/manifest.json');
export const BENCH_MANIFEST = resolve(ROOT, 'bench/manifest.json');

/**
 * The 569 rows of the breast cancer data set (features only). The file's first line is a count
 * header (`569,30,malignant,benign`), the last column the target.
 */
export function breastCancerRows(): number[][] {
  return readFileSync(resolve(ROOT, 'models/data/breast_cancer.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',').slice(0, 30).map(Number));
}

/** Feature names of the `breast-cancer` ensemble, in order (the batch file's header). */
export function breastCancerFeatures(): string[] {
  const ensemble = loadManifest(MODELS_MANIFEST).ensembles.get('breast-cancer');
  if (!ensemble) throw new Error('models/manifest.json has no breast-cancer ensemble');
  return ensemble.features;
}

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/**
 * Writes a batch CSV of `count` rows: a header of feature names with an `id` column, then the data
 * set's rows repeated, each with a unique id. Streamed, so 100,000 rows cost no memory here.
 */
export async function writeBatchCsv(file: string, count: number): Promise<number> {
  const rows = breastCancerRows().map((r) => r.join(','));
  const out = createWriteStream(file);
  const header = ['id', ...breastCancerFeatures()].map(csvField).join(',');
  let chunk = `${header}\n`;
  for (let i = 0; i < count; i++) {
    chunk += `r${i},${rows[i % rows.length]}\n`;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  return count;
}
