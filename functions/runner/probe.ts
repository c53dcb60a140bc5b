import type { OnnxModelSpec } from '../core/manifest.js';
import type { Scorer } from '../core/ports.js';
import { firstDistributionProblem, PROBABILITIES_HINT } from '../core/probabilities.js';

/**
 * Each member's answer to one row of zeros, checked as every answer is checked: why it is not
 * probabilities, by model id. A model brought by hand that gives logits (its softmax left out of
 * the export) is then named when its instance starts, not only on its first call. Zeros are a
 * valid row for any model that gives probabilities: whatever the row, its answer is a distribution.
 * A member that fails to answer at all is not named here: its calls say why.
 */
export async function answersNotProbabilities(
  members: readonly OnnxModelSpec[],
  scorer: Scorer,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    members.map(async (m) => {
      let rows: number[][];
      try {
        rows = await scorer.score(m, [m.features.map(() => 0)]);
      } catch {
        return;
      }
      const off = firstDistributionProblem(rows);
      if (off) out[m.id] = `its answer to a row of zeros ${off.why}; ${PROBABILITIES_HINT}`;
    }),
  );
  return out;
}
