/**
 * How far a member's probabilities may stray from a distribution: float32 rounding moves a row's
 * sum by about 1e-7 (the bundled models: at most 7e-7); logits or raw scores are off by far more.
 */
export const PROBABILITY_TOLERANCE = 1e-3;

/** Where a member's answer sends someone whose model gives scores instead of probabilities. */
export const PROBABILITIES_HINT =
  'a member must give one probability per label, e.g. with its softmax exported with it (README, "Exporting to ONNX")';

const shown = (v: number) => String(Math.round(v * 1e4) / 1e4);

/**
 * Why a row of a member's answer is not a probability distribution over the labels (a value outside
 * 0..1, or values that do not sum to 1), or undefined when it is one. A member giving logits would
 * otherwise outvote the others in a soft vote with "probabilities" above 1, and no answer would say so.
 */
export function distributionProblem(row: readonly number[]): string | undefined {
  let sum = 0;
  for (const v of row) {
    if (v < -PROBABILITY_TOLERANCE || v > 1 + PROBABILITY_TOLERANCE) {
      return `has ${shown(v)}, outside 0..1 (${row.map(shown).join(', ')})`;
    }
    sum += v;
  }
  if (Math.abs(sum - 1) > PROBABILITY_TOLERANCE) {
    return `sums to ${shown(sum)}, not 1 (${row.map(shown).join(', ')})`;
  }
  return undefined;
}

/** The first row of `rows` that is not a distribution, and why. */
export function firstDistributionProblem(
  rows: readonly (readonly number[])[],
): { row: number; why: string } | undefined {
  for (let i = 0; i < rows.length; i++) {
    const why = distributionProblem(rows[i] as number[]);
    if (why) return { row: i, why };
  }
  return undefined;
}
