import { CANARY_BUCKETS, canaryBucket } from '../../functions/core/canary.js';
import type { EnsembleSpec } from '../../functions/core/manifest.js';

let counter = 0;

/**
 * A fresh client id that the canary split sends to `side` of `ensemble` (to the ensemble itself
 * when it has no canary), found with the routing function itself: tests stay deterministic
 * whatever percent the manifest gives the canary.
 */
export function clientIdOn(ensemble: EnsembleSpec, side: 'primary' | 'canary', prefix = 'test'): string {
  const threshold = ((ensemble.canary?.percent ?? 0) * CANARY_BUCKETS) / 100;
  if (side === 'canary' && threshold === 0) throw new Error(`${ensemble.name} sends nothing to a canary`);
  if (side === 'primary' && threshold >= CANARY_BUCKETS) {
    throw new Error(`${ensemble.name} sends everything to its canary`);
  }
  for (;;) {
    const id = `${prefix}-${process.pid}-${++counter}`;
    const onCanary = canaryBucket(ensemble.name, id) < threshold;
    if (onCanary === (side === 'canary')) return id;
  }
}
