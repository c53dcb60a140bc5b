import { createHash } from 'node:crypto';
import type { EnsembleSpec, ModelSpec } from './manifest.js';

// Bumped when the key's layout or the stored entry's meaning changes: old entries then miss.
const KEY_VERSION = 'fanout-result-cache/1';

const fingerprints = new WeakMap<EnsembleSpec, string>();

/**
 * A SHA-256 (hex) of everything that decides an ensemble's answer to a row: its strategy, quorum,
 * features and labels in order, each member with its weight and what identifies the model (id,
 * version, kind, the tensor names it is called with, or the SageMaker endpoint and how its answer
 * is read), and the stacking meta-model's whole content. Any change to one of them changes the
 * fingerprint, so entries written before the change are never read again.
 *
 * Left out on purpose: timeouts and memory (they decide whether a member answers, and answers
 * with a failed member are never cached), descriptions, and model file paths (absolute, so they
 * differ between machines; a model's version names its file's content, see README "Result cache").
 * Computed once per ensemble object.
 */
export function ensembleFingerprint(ensemble: EnsembleSpec, models: ReadonlyMap<string, ModelSpec>): string {
  const known = fingerprints.get(ensemble);
  if (known) return known;
  const content = {
    strategy: ensemble.strategy,
    quorum: ensemble.quorum,
    features: ensemble.features,
    labels: ensemble.labels,
    members: ensemble.members.map((id, i) => ({
      weight: ensemble.weights[i] ?? 1,
      ...modelIdentity(id, models.get(id)),
    })),
    stacking: ensemble.stacking ?? null,
  };
  const fingerprint = createHash('sha256').update(canonicalJson(content)).digest('hex');
  fingerprints.set(ensemble, fingerprint);
  return fingerprint;
}

function modelIdentity(id: string, model: ModelSpec | undefined): Record<string, unknown> {
  if (!model) return { id, missing: true };
  const base = {
    id,
    version: model.version,
    kind: model.kind,
    features: model.features,
    labels: model.labels,
  };
  return model.kind === 'onnx'
    ? { ...base, input: model.input, output: model.output }
    : { ...base, endpoint: model.endpoint };
}

/**
 * The cache key of one row: SHA-256 (hex) of the ensemble's name, its fingerprint and the row's
 * values as little-endian float32, the type every model receives. So `1` and `1.0`, a row given as
 * an array and the same row given by feature names (both validated into feature order first), and
 * two doubles that round to the same float32 all have one key. `-0` counts as `0`.
 */
export function rowCacheKey(ensembleName: string, fingerprint: string, row: readonly number[]): string {
  const bytes = Buffer.allocUnsafe(row.length * 4);
  for (let i = 0; i < row.length; i++) {
    const v = row[i] as number;
    bytes.writeFloatLE(v === 0 ? 0 : v, i * 4);
  }
  return createHash('sha256')
    .update(`${KEY_VERSION}\n${ensembleName}\n${fingerprint}\n`)
    .update(bytes)
    .digest('hex');
}

/** The cache key of each validated row (in feature order) for `ensemble`. */
export function rowCacheKeys(
  ensemble: EnsembleSpec,
  models: ReadonlyMap<string, ModelSpec>,
  rows: readonly (readonly number[])[],
): string[] {
  const fingerprint = ensembleFingerprint(ensemble, models);
  return rows.map((row) => rowCacheKey(ensemble.name, fingerprint, row));
}

/** JSON with object keys sorted at every level, so equal content always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
