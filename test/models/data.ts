import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's models folder (absolute, ends with a slash). */
export const MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));

/** A vendored sklearn data set: rows of raw features and the integer class of each row. */
export interface Dataset {
  rows: number[][];
  targets: number[];
  labels: string[];
}

/**
 * Reads a sklearn-bundled CSV. The first line is a count header (`569,30,malignant,benign`), not
 * column names; every other line is the features followed by the class index.
 */
export function readDataset(file: string): Dataset {
  const lines = readFileSync(join(MODELS_DIR, file), 'utf8').trim().split('\n');
  const [count, width, ...labels] = (lines[0] as string).split(',');
  const rows: number[][] = [];
  const targets: number[] = [];
  for (const line of lines.slice(1)) {
    const values = line.split(',').map(Number);
    rows.push(values.slice(0, -1));
    targets.push(values.at(-1) as number);
  }
  if (rows.length !== Number(count) || rows.some((r) => r.length !== Number(width))) {
    throw new Error(`${file}: expected ${count} rows of ${width} features`);
  }
  return { rows, targets, labels };
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

/** Fraction of rows whose argmax matches the target. */
export function accuracy(probabilities: readonly (readonly number[])[], targets: readonly number[]): number {
  let right = 0;
  probabilities.forEach((p, i) => {
    let best = 0;
    for (let c = 1; c < p.length; c++) if ((p[c] as number) > (p[best] as number)) best = c;
    if (best === targets[i]) right++;
  });
  return right / probabilities.length;
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
