import { firstDistributionProblem, PROBABILITIES_HINT } from '../functions/core/probabilities.js';

/** Fraction of rows whose most probable class is the target (ties: the first class). */
export function accuracy(probabilities: readonly (readonly number[])[], targets: readonly number[]): number {
  let right = 0;
  probabilities.forEach((p, i) => {
    let best = 0;
    for (let c = 1; c < p.length; c++) if ((p[c] as number) > (p[best] as number)) best = c;
    if (best === targets[i]) right++;
  });
  return right / probabilities.length;
}

/** Area under the ROC curve of `scores` for the rows where `positive` is true (ties count half). */
function binaryAuc(scores: readonly number[], positive: readonly boolean[]): number {
  const order = scores.map((s, i) => ({ s, p: positive[i] as boolean })).sort((a, b) => a.s - b.s);
  let rankSum = 0;
  let positives = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j < order.length && (order[j] as { s: number }).s === (order[i] as { s: number }).s) j++;
    const averageRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if ((order[k] as { p: boolean }).p) {
        rankSum += averageRank;
        positives++;
      }
    }
    i = j;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * ROC AUC as the trainer computes it (scikit-learn's `roc_auc_score`): on the second class's
 * probability for two classes, else one-vs-rest averaged over the classes (macro).
 */
export function rocAuc(probabilities: readonly (readonly number[])[], targets: readonly number[]): number {
  const classes = probabilities[0]?.length ?? 0;
  if (classes === 2) {
    return binaryAuc(
      probabilities.map((p) => p[1] as number),
      targets.map((t) => t === 1),
    );
  }
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    sum += binaryAuc(
      probabilities.map((p) => p[c] as number),
      targets.map((t) => t === c),
    );
  }
  return sum / classes;
}

/** The order of a model's output columns that best fits the labels, and its accuracy. */
export interface ColumnOrder {
  /** `order[c]` is the label that output column `c` would have to mean. */
  order: number[];
  accuracy: number;
}

/**
 * The assignment of output columns to labels that scores best on labelled rows: for a model whose
 * classes come out in another order than the label set's (a classifier trained on string labels
 * sorts them), it is not the identity, and its accuracy is far above the model's as given. Found
 * on the confusion matrix, by trying every order up to 8 labels (8! = 40,320) and greedily above.
 */
export function bestColumnOrder(
  probabilities: readonly (readonly number[])[],
  targets: readonly number[],
): ColumnOrder {
  const classes = probabilities[0]?.length ?? 0;
  // hits[c][t]: rows whose top column is c and whose label is t.
  const hits = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  probabilities.forEach((p, i) => {
    let best = 0;
    for (let c = 1; c < p.length; c++) if ((p[c] as number) > (p[best] as number)) best = c;
    const row = hits[best] as number[];
    row[targets[i] as number] = (row[targets[i] as number] ?? 0) + 1;
  });
  const total = probabilities.length || 1;
  const score = (order: number[]) => order.reduce((s, t, c) => s + ((hits[c] as number[])[t] ?? 0), 0);
  let best = Array.from({ length: classes }, (_, c) => c);
  let bestScore = score(best);
  if (classes <= 8) {
    const permute = (prefix: number[], rest: number[]) => {
      if (rest.length === 0) {
        const s = score(prefix);
        if (s > bestScore) [best, bestScore] = [prefix, s];
        return;
      }
      for (let i = 0; i < rest.length; i++)
        permute([...prefix, rest[i] as number], [...rest.slice(0, i), ...rest.slice(i + 1)]);
    };
    permute([], [...best]);
  } else {
    const order = new Array<number>(classes).fill(-1);
    const used = new Set<number>();
    const cells = hits.flatMap((row, c) => row.map((n, t) => ({ c, t, n }))).sort((a, b) => b.n - a.n);
    for (const { c, t } of cells) {
      if (order[c] === -1 && !used.has(t)) {
        order[c] = t;
        used.add(t);
      }
    }
    const s = score(order);
    if (s > bestScore) [best, bestScore] = [order, s];
  }
  return { order: best, accuracy: bestScore / total };
}

const fixed = (v: number) => v.toFixed(4);

/**
 * Why a model's answers on `source` are not probabilities (logits, raw scores): served, each would
 * be refused as a member failure (see checkShape), and its accuracy says nothing of that.
 */
export function probabilitiesProblem(
  id: string,
  scores: readonly (readonly number[])[],
  source: string,
): string | undefined {
  const off = firstDistributionProblem(scores);
  return (
    off &&
    `${id} does not give probabilities: on row ${off.row + 1} of ${source} its output ${off.why}; ${PROBABILITIES_HINT}`
  );
}

/**
 * Why a model's output columns look out of order: they fit the labels far better in another order
 * (its classes come out in another order than the label set's; a classifier trained on string
 * labels sorts them), so in an ensemble it would vote for the wrong label on the rows it gets
 * right. Twenty points of accuracy apart, so a merely weak model is not taken for one.
 */
export function columnOrderProblem(
  model: { id: string; labels: readonly string[] },
  scores: readonly (readonly number[])[],
  targets: readonly number[],
  source: string,
): string | undefined {
  const asGiven = accuracy(scores, targets);
  const best = bestColumnOrder(scores, targets);
  // A model that gives every row one label fits "better" swapped when that label is the rarer
  // one; it is no better than always answering the commonest label, so it is not taken for one.
  if (best.accuracy < asGiven + 0.2 || best.accuracy < majorityShare(targets) + 0.1) return undefined;
  const labels = best.order.map((t) => model.labels[t]).join(', ');
  return (
    `${model.id}'s output columns look out of order: accuracy ${fixed(asGiven)} on ${source} as they are, ` +
    `${fixed(best.accuracy)} if they meant (${labels}). Export its classes in the order of the label set ` +
    `(${model.labels.join(', ')}), or give it a label set in its own order`
  );
}

/** The share of rows that have the commonest label: what always answering it scores. */
function majorityShare(targets: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const t of targets) counts.set(t, (counts.get(t) ?? 0) + 1);
  return targets.length ? Math.max(...counts.values()) / targets.length : 0;
}
