import type { StackingModel, StrategyName } from './manifest-schema.js';

/** One answering member's scores: `probabilities[row][class]`. */
export interface MemberScores {
  model: string;
  weight: number;
  probabilities: number[][];
}

/** Combined scores per row, and the chosen class index per row. */
export interface Combined {
  probabilities: number[][];
  labelIndex: number[];
}

/** What a strategy needs besides the scores of the members that answered. */
export interface StrategyContext {
  classes: number;
  rows: number;
  /** All members in manifest order; stacking imputes the ones missing from `scores`. */
  members: readonly string[];
  stacking?: StackingModel;
}

export type Strategy = (scores: readonly MemberScores[], ctx: StrategyContext) => Combined;

/** Index of the largest value; ties go to the lowest index (the label listed first). */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

function perCell(
  scores: readonly MemberScores[],
  ctx: StrategyContext,
  cell: (values: number[], weights: number[]) => number,
  normalise: boolean,
): Combined {
  const probabilities: number[][] = [];
  const weights = scores.map((s) => s.weight);
  for (let r = 0; r < ctx.rows; r++) {
    const row: number[] = [];
    for (let c = 0; c < ctx.classes; c++)
      row.push(
        cell(
          scores.map((s) => s.probabilities[r]?.[c] ?? 0),
          weights,
        ),
      );
    probabilities.push(normalise ? normaliseRow(row) : row);
  }
  return { probabilities, labelIndex: probabilities.map(argmax) };
}

function normaliseRow(row: number[]): number[] {
  const sum = row.reduce((a, b) => a + b, 0);
  return sum > 0 ? row.map((v) => v / sum) : row.map(() => 1 / row.length);
}

/** Soft vote: the plain mean of the members' probabilities. */
export const softVote: Strategy = (scores, ctx) =>
  perCell(scores, ctx, (v) => v.reduce((a, b) => a + b, 0) / v.length, false);

/** Weighted mean: weights renormalised over the members that answered. */
export const weightedMean: Strategy = (scores, ctx) =>
  perCell(
    scores,
    ctx,
    (v, w) => {
      const total = w.reduce((a, b) => a + b, 0);
      return v.reduce((acc, x, i) => acc + x * (w[i] as number), 0) / total;
    },
    false,
  );

/** Max: per class the most confident member, rescaled so the row sums to 1. */
export const maxStrategy: Strategy = (scores, ctx) => perCell(scores, ctx, (v) => Math.max(...v), true);

/** Median: per class the median member (mean of the middle two when even), rescaled to sum 1. */
export const median: Strategy = (scores, ctx) =>
  perCell(
    scores,
    ctx,
    (v) => {
      const s = [...v].sort((a, b) => a - b);
      const mid = s.length >> 1;
      return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
    },
    true,
  );

/**
 * Hard majority vote. Each member votes for its argmax class (weighted by its weight, 1 unless the
 * ensemble sets weights); probabilities are the vote shares. Tie rule, deterministic: among the
 * classes with the most votes, the one with the highest mean member probability wins; if that is
 * tied too, the class listed first in the manifest's labels wins.
 */
export const hardVote: Strategy = (scores, ctx) => {
  const probabilities: number[][] = [];
  const labelIndex: number[] = [];
  const totalWeight = scores.reduce((a, s) => a + s.weight, 0);
  for (let r = 0; r < ctx.rows; r++) {
    const votes = new Array<number>(ctx.classes).fill(0);
    const meanProb = new Array<number>(ctx.classes).fill(0);
    for (const s of scores) {
      const row = s.probabilities[r] ?? [];
      votes[argmax(row)] = (votes[argmax(row)] as number) + s.weight;
      row.forEach((p, c) => {
        meanProb[c] = (meanProb[c] as number) + p / scores.length;
      });
    }
    const top = Math.max(...votes);
    let winner = -1;
    votes.forEach((v, c) => {
      if (v === top && (winner < 0 || (meanProb[c] as number) > (meanProb[winner] as number))) winner = c;
    });
    probabilities.push(votes.map((v) => v / totalWeight));
    labelIndex.push(winner);
  }
  return { probabilities, labelIndex };
};

/**
 * Stacking: a meta-model (softmax-linear, trained on out-of-fold member probabilities) over the
 * members' probabilities concatenated in manifest order. A member that did not answer is imputed
 * with its mean out-of-fold probabilities, so a degraded ensemble still answers.
 */
export const stacking: Strategy = (scores, ctx) => {
  const meta = ctx.stacking;
  if (!meta) throw new Error('stacking strategy needs a meta-model');
  const byModel = new Map(scores.map((s) => [s.model, s]));
  const probabilities: number[][] = [];
  for (let r = 0; r < ctx.rows; r++) {
    const x: number[] = [];
    // The meta-model's own member order: the ensemble may be serving fewer members than it was
    // trained on (a SageMaker member without an endpoint), and those are imputed like failures.
    meta.members.forEach((m, i) => {
      const row = byModel.get(m)?.probabilities[r];
      for (let c = 0; c < ctx.classes; c++)
        x.push(row ? (row[c] as number) : (meta.featureMeans[i * ctx.classes + c] as number));
    });
    const z = meta.coef.map((w, k) =>
      w.reduce((acc, wj, j) => acc + wj * (x[j] as number), meta.intercept[k] as number),
    );
    probabilities.push(softmax(z));
  }
  return { probabilities, labelIndex: probabilities.map(argmax) };
};

/** Numerically stable softmax. */
export function softmax(z: readonly number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export const strategies: Record<StrategyName, Strategy> = {
  'soft-vote': softVote,
  'weighted-mean': weightedMean,
  'hard-vote': hardVote,
  max: maxStrategy,
  median,
  stacking,
};
