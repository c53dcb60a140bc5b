import { argmax } from './strategies.js';

/**
 * How sure one combined prediction is, each in 0..1 (`spread` in 0..0.5):
 * - `agreement`: the share of counted members that answered whose top label is the ensemble's;
 * - `margin`: the ensemble's top probability minus its second;
 * - `entropy`: the entropy of the ensemble's probabilities divided by log(C), C the label count;
 * - `spread`: the mean over labels of the (population) standard deviation of the members'
 *   probabilities.
 * High agreement and margin with low entropy and spread mean the members are sure and agree.
 */
export interface Uncertainty {
  agreement: number;
  margin: number;
  entropy: number;
  spread: number;
}

/** Column order wherever uncertainty is a row of numbers (batch results file, OIP output). */
export const UNCERTAINTY_COLUMNS = ['agreement', 'margin', 'entropy', 'spread'] as const;

/**
 * The uncertainty of one row. `combined` is the ensemble's probabilities for the row and
 * `labelIndex` the label it chose (which for hard vote may come from its tie rule, not the
 * largest share); `members` holds each counted, answering member's probabilities for the row.
 *
 * Rules that hold for every strategy: the measures describe the members the strategy combined,
 * unweighted (weights shape the answer, not how much the members agree), so a weighted mean and a
 * hard vote read the same way. A member's top label is its argmax with ties going to the label
 * listed first, exactly the `label` its entry in `members` shows. `margin` and `entropy` read the
 * probabilities the strategy returned (vote shares for hard vote, the meta-model's for stacking,
 * the rescaled ones for max and median). With one member, agreement is 1 and spread 0.
 */
export function uncertainty(
  combined: readonly number[],
  labelIndex: number,
  members: readonly (readonly number[])[],
): Uncertainty {
  const classes = combined.length;
  const n = members.length;
  const agreeing = members.filter((m) => argmax(m) === labelIndex).length;
  const sorted = [...combined].sort((a, b) => b - a);
  const margin = (sorted[0] ?? 0) - (sorted[1] ?? 0);
  let h = 0;
  for (const p of combined) if (p > 0) h -= p * Math.log(p);
  let spread = 0;
  if (n > 0) {
    for (let c = 0; c < classes; c++) {
      // Shifted by the first member's value: identical members give exactly 0, not 1e-17.
      const shift = members[0]?.[c] ?? 0;
      const d = members.map((m) => (m[c] ?? 0) - shift);
      const mean = d.reduce((a, b) => a + b, 0) / n;
      const variance = d.reduce((a, v) => a + v * v, 0) / n - mean * mean;
      spread += Math.sqrt(Math.max(0, variance));
    }
    spread /= classes;
  }
  return {
    agreement: n > 0 ? agreeing / n : 0,
    margin: clamp(margin),
    entropy: classes > 1 ? clamp(h / Math.log(classes)) : 0,
    spread,
  };
}

/** Float rounding can put a value a hair outside 0..1 (a row summing to 1 + 1e-16). */
const clamp = (v: number) => Math.min(1, Math.max(0, v));

/** An uncertainty as its row of numbers, in UNCERTAINTY_COLUMNS order. */
export function uncertaintyRow(u: Uncertainty): number[] {
  return UNCERTAINTY_COLUMNS.map((k) => u[k]);
}
