import type { SageMakerModelSpec } from './manifest.js';

/** The request body for an endpoint: CSV rows, or JSON `{"instances": rows}`. */
export function encodeRows(
  rows: readonly (readonly number[])[],
  contentType: 'text/csv' | 'application/json',
): string {
  return contentType === 'text/csv'
    ? rows.map((r) => r.join(',')).join('\n')
    : JSON.stringify({ instances: rows });
}

/**
 * Reads an endpoint's answer into `probabilities[row][class]`, as the manifest says it is shaped:
 * - `probabilities`: one probability vector per row (JSON arrays, or CSV lines);
 * - `positive-score`: one score per row for the second label of a binary model, giving [1-s, s];
 * - `named-fields`: one object per row keyed by label.
 * JSON answers may wrap the list in an object: `field` names it, else `predictions` is tried.
 * Returns a reason string when the answer does not fit.
 */
export function decodeScores(text: string, model: SageMakerModelSpec, rows: number): number[][] | string {
  const { format, field } = model.endpoint.response;
  const labels = model.labels;
  let list: unknown;
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      list = JSON.parse(trimmed);
    } catch (err) {
      return `answer is not valid JSON: ${(err as Error).message}`;
    }
    if (list !== null && typeof list === 'object' && !Array.isArray(list)) {
      const key = field ?? 'predictions';
      list = (list as Record<string, unknown>)[key];
      if (list === undefined) return `answer has no "${key}" field`;
    }
  } else {
    list = trimmed === '' ? [] : trimmed.split(/\r?\n/).map((line) => line.split(',').map((v) => Number(v)));
    if (format === 'positive-score') list = (list as number[][]).map((r) => r[0]);
  }
  if (!Array.isArray(list)) return 'answer is not a list of per-row scores';
  if (list.length !== rows) return `answer has ${list.length} rows for ${rows} instances`;
  const out: number[][] = [];
  for (let i = 0; i < list.length; i++) {
    const item: unknown = list[i];
    let probs: unknown[];
    if (format === 'positive-score') {
      if (labels.length !== 2) return 'positive-score answers need a model with exactly two labels';
      const s = Array.isArray(item) ? item[0] : item;
      probs = typeof s === 'number' ? [1 - s, s] : [Number.NaN, Number.NaN];
    } else if (format === 'named-fields') {
      if (item === null || typeof item !== 'object') return `row ${i} is not an object keyed by label`;
      probs = labels.map((l) => (item as Record<string, unknown>)[l]);
    } else {
      if (!Array.isArray(item)) return `row ${i} is not a list of ${labels.length} probabilities`;
      probs = item;
    }
    if (probs.length !== labels.length || probs.some((p) => typeof p !== 'number' || !Number.isFinite(p))) {
      return `row ${i} is not ${labels.length} finite probabilities`;
    }
    out.push(probs as number[]);
  }
  return out;
}
