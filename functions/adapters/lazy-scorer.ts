import type { ModelSpec } from '../core/manifest.js';
import type { Scorer } from '../core/ports.js';

/**
 * A scorer whose module is loaded on its first use: a Lambda instance that never serves such a
 * model never pays for loading it (the SageMaker client pulls in most of the AWS SDK, about half
 * of the runner's bundle). A failed load is not kept, so the next call tries again.
 */
export function lazyScorer(load: () => Promise<Scorer>): Scorer & { load(): Promise<void> } {
  let pending: Promise<Scorer> | undefined;
  const loaded = () => {
    if (!pending) {
      pending = load();
      pending.catch(() => {
        pending = undefined;
      });
    }
    return pending;
  };
  return {
    async score(model: ModelSpec, rows: readonly (readonly number[])[]) {
      return (await loaded()).score(model, rows);
    },
    /** Loads the module now (an instance that starts ahead of its traffic). */
    async load() {
      await loaded();
    },
  };
}
