import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A labelled data set: rows of raw features in feature order, and the class index of each row. */
export interface Dataset {
  rows: number[][];
  targets: number[];
  labels: string[];
}

/** A data set bundled under `models/data/`, as `models/metrics.json` describes it. */
export interface BundledDataset extends Dataset {
  name: string;
  /** The CSV, relative to the models folder (`data/breast_cancer.csv`). */
  file: string;
  /** Row indices of the held-out split, when the data set has one. */
  heldOut?: number[];
  /** The rows every member's golden file holds, when the data set has golden files. */
  goldenRows?: number[][];
}

interface MetricsDatasets {
  datasets?: Record<
    string,
    { file: string; features: string[]; labels: string[]; split?: { file?: string } }
  >;
}

/**
 * Reads a sklearn-bundled CSV. The first line is a count header (`569,30,malignant,benign`), not
 * column names; every other line is the features followed by the class index.
 */
export function readSklearnCsv(path: string): Dataset {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const [count, width, ...labels] = (lines[0] as string).split(',');
  const rows: number[][] = [];
  const targets: number[] = [];
  for (const line of lines.slice(1)) {
    const values = line.split(',').map(Number);
    rows.push(values.slice(0, -1));
    targets.push(values.at(-1) as number);
  }
  if (rows.length !== Number(count) || rows.some((r) => r.length !== Number(width))) {
    throw new Error(`${path}: expected ${count} rows of ${width} features`);
  }
  return { rows, targets, labels };
}

/**
 * The bundled data set whose features and labels are exactly these (names and order), found
 * through `models/metrics.json`; undefined when no data set matches.
 */
export function bundledDatasetFor(
  modelsDir: string,
  features: readonly string[],
  labels: readonly string[],
): BundledDataset | undefined {
  const metricsFile = join(modelsDir, 'metrics.json');
  if (!existsSync(metricsFile)) return undefined;
  const { datasets = {} } = JSON.parse(readFileSync(metricsFile, 'utf8')) as MetricsDatasets;
  for (const [name, d] of Object.entries(datasets)) {
    if (d.features.join('\u0000') !== features.join('\u0000')) continue;
    if (d.labels.join('\u0000') !== labels.join('\u0000')) continue;
    const data = readSklearnCsv(join(modelsDir, d.file));
    const splitFile = d.split?.file && join(modelsDir, d.split.file);
    const heldOut =
      splitFile && existsSync(splitFile)
        ? (JSON.parse(readFileSync(splitFile, 'utf8')) as { test: number[] }).test
        : undefined;
    const goldenFile = join(modelsDir, name, 'golden', 'ensemble.json');
    const goldenRows = existsSync(goldenFile)
      ? (JSON.parse(readFileSync(goldenFile, 'utf8')) as { rows: number[][] }).rows
      : undefined;
    return { ...data, name, file: d.file, heldOut, goldenRows };
  }
  return undefined;
}

/**
 * Reads a labelled CSV a user brings: a header naming the features (any order, extra columns
 * ignored) and a `label` column holding label names. Errors name the line and the column.
 */
export function readLabelledCsv(
  path: string,
  features: readonly string[],
  labels: readonly string[],
): Dataset {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const missing = [...features, 'label'].filter((f) => !header.includes(f));
  if (missing.length) {
    throw new Error(`${path}: the header has no column ${missing.map((m) => `"${m}"`).join(', ')}`);
  }
  const index = features.map((f) => header.indexOf(f));
  const labelAt = header.indexOf('label');
  const rows: number[][] = [];
  const targets: number[] = [];
  lines.slice(1).forEach((line, i) => {
    if (line.trim() === '') return;
    const cells = line.split(',');
    const label = (cells[labelAt] ?? '').trim();
    const target = labels.indexOf(label);
    if (target < 0) {
      throw new Error(`${path}: line ${i + 2}: label "${label}" is not one of ${labels.join(', ')}`);
    }
    rows.push(
      index.map((at, j) => {
        const value = Number(cells[at]);
        if (cells[at] === undefined || cells[at]?.trim() === '' || !Number.isFinite(value)) {
          throw new Error(`${path}: line ${i + 2}: "${features[j]}" is not a number`);
        }
        return value;
      }),
    );
    targets.push(target);
  });
  if (rows.length === 0) throw new Error(`${path}: no rows`);
  return { rows, targets, labels: [...labels] };
}
