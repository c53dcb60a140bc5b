import { ValidationError } from './errors.js';

/** One problem with one instance; `field` is the feature name when one is involved. */
export interface InstanceProblem {
  instance: number;
  field?: string;
  reason: string;
}

/** The largest finite float32: models take float32 tensors, so larger values would become Infinity. */
export const FLOAT32_MAX = 3.4028234663852886e38;
const MAX_PROBLEMS_REPORTED = 20;

/**
 * Checks client instances against a feature list and returns them as rows in feature order.
 * An instance is an array of numbers in feature order or an object keyed by feature name.
 * Throws a ValidationError whose message names the first bad instance and field, and whose
 * details list up to 20 problems so a client can fix them all at once.
 */
export function validateInstances(
  raw: unknown,
  features: readonly string[],
  field = 'instances',
): number[][] {
  if (!Array.isArray(raw)) {
    throw new ValidationError(`${field} must be an array of instances, got ${describe(raw)}`, {
      details: { field },
    });
  }
  if (raw.length === 0) {
    throw new ValidationError(`${field} must contain at least one instance`, { details: { field } });
  }
  const problems: InstanceProblem[] = [];
  const rows = raw.map((instance, i) => toRow(instance, i, features, problems));
  if (problems.length > 0) {
    throw new ValidationError(problemMessage(field, problems), {
      details: { field, problems: problems.slice(0, MAX_PROBLEMS_REPORTED), problemCount: problems.length },
    });
  }
  return rows;
}

/**
 * Converts one instance to a row, pushing any problems. Exported for batch parsing, which reports
 * problems per row instead of rejecting the whole request.
 */
export function toRow(
  instance: unknown,
  index: number,
  features: readonly string[],
  problems: InstanceProblem[],
): number[] {
  if (Array.isArray(instance)) {
    if (instance.length !== features.length) {
      problems.push({
        instance: index,
        reason: `expected ${features.length} values in feature order, got ${instance.length}`,
      });
      return [];
    }
    return instance.map((v, j) => checkValue(v, index, features[j] as string, problems));
  }
  if (instance !== null && typeof instance === 'object') {
    const record = instance as Record<string, unknown>;
    const known = new Set(features);
    for (const key of Object.keys(record)) {
      if (!known.has(key)) problems.push({ instance: index, field: key, reason: 'unknown feature' });
    }
    return features.map((name) => {
      if (!Object.hasOwn(record, name)) {
        problems.push({ instance: index, field: name, reason: 'missing feature' });
        return Number.NaN;
      }
      return checkValue(record[name], index, name, problems);
    });
  }
  problems.push({
    instance: index,
    reason: `expected an array of ${features.length} numbers or an object keyed by feature name, got ${describe(instance)}`,
  });
  return [];
}

function checkValue(value: unknown, index: number, field: string, problems: InstanceProblem[]): number {
  if (typeof value !== 'number') {
    problems.push({ instance: index, field, reason: `expected a number, got ${describe(value)}` });
    return Number.NaN;
  }
  if (!Number.isFinite(value)) {
    problems.push({ instance: index, field, reason: `expected a finite number, got ${value}` });
  } else if (Math.abs(value) > FLOAT32_MAX) {
    problems.push({ instance: index, field, reason: `${value} is outside the float32 range models use` });
  }
  return value;
}

function problemMessage(field: string, problems: InstanceProblem[]): string {
  const first = problems[0] as InstanceProblem;
  const where = `${field}[${first.instance}]${first.field === undefined ? '' : ` field "${first.field}"`}`;
  const more =
    problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  return `${where}: ${first.reason}${more}`;
}

/** A short description of a JSON value for error messages; never echoes long input back. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string')
    return value.length > 20 ? 'a string' : `the string ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
