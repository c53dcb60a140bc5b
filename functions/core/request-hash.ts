import { createHash } from 'node:crypto';

/**
 * The hash of a request as idempotency compares it: the ensemble and the validated instances (rows
 * of numbers in feature order), so the same rows sent as arrays or as objects keyed by feature
 * name hash alike, and any other ensemble or value does not.
 */
export function requestHash(ensemble: string, instances: readonly (readonly number[])[]): string {
  return createHash('sha256')
    .update(JSON.stringify([ensemble, instances]))
    .digest('hex');
}
