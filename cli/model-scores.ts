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
