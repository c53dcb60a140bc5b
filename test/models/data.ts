import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Dataset, readSklearnCsv } from '../../cli/datasets.js';

export { accuracy } from '../../cli/model-scores.js';
export type { Dataset };

/**
 * The models folder the model suites check (absolute, ends with a slash): the repository's, or
 * `FANOUT_TEST_MODELS_DIR` (the CLI test points it at a copy it added a model to, to prove these
 * suites follow whatever the manifest declares).
 */
export const MODELS_DIR = `${resolve(
  process.env.FANOUT_TEST_MODELS_DIR ?? fileURLToPath(new URL('../../models/', import.meta.url)),
)}/`;

/** Reads a sklearn-bundled CSV under the models folder (see cli/datasets.ts). */
export function readDataset(file: string): Dataset {
  return readSklearnCsv(join(MODELS_DIR, file));
}

/** Parses a JSON file under models/. */
export function readModelsJson<T>(file: string): T {
  return JSON.parse(readFileSync(join(MODELS_DIR, file), 'utf8')) as T;
}

/** A member's golden file: held-out rows and the trainer's probabilities for them. */
export interface MemberGolden {
  model: string;
  labels: string[];
  rows: number[][];
  probabilities: number[][];
}

/** An ensemble golden file: the same rows, soft-vote and stacking outputs. */
export interface EnsembleGolden {
  members: string[];
  labels: string[];
  rows: number[][];
  softVote: number[][];
  stacking: number[][];
}

/** The train/held-out split: row indices into the data set. */
export interface Split {
  rows: number;
  train: number[];
  test: number[];
}

/** What models/metrics.json records, as far as the suites check it. */
export interface Metrics {
  datasets: Record<
    string,
    { file: string; features: string[]; labels: string[]; split: { file: string }; rows: number }
  >;
  models: {
    id: string;
    file: string;
    sha256: string;
    bytes: number;
    dataset?: string;
    wholeData?: { rows: number; accuracy: number };
  }[];
  ensembles: { dataset: string; members: string[]; softVote: { heldOut: { accuracy: number } } }[];
}

/** Largest absolute difference between two equally shaped matrices (throws on a shape mismatch). */
export function maxAbsDiff(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): number {
  if (a.length !== b.length) throw new Error(`row count ${a.length} != ${b.length}`);
  let worst = 0;
  a.forEach((row, i) => {
    const other = b[i] as readonly number[];
    if (row.length !== other.length) throw new Error(`row ${i}: width ${row.length} != ${other.length}`);
    row.forEach((v, j) => {
      worst = Math.max(worst, Math.abs(v - (other[j] as number)));
    });
  });
  return worst;
}
