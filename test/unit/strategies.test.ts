import type { MemberScores, StrategyContext } from '../../functions/core/strategies.js';
import {
  argmax,
  hardVote,
  maxStrategy,
  median,
  softmax,
  softVote,
  stacking,
  weightedMean,
} from '../../functions/core/strategies.js';

const ctx = (rows: number, classes = 2, members = ['a', 'b', 'c']): StrategyContext => ({
  rows,
  classes,
  members,
});
const m = (model: string, probabilities: number[][], weight = 1): MemberScores => ({
  model,
  weight,
  probabilities,
});

function close(actual: number[][], expected: number[][]) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => {
    row.forEach((v, j) => {
      expect(v).toBeCloseTo(expected[i]?.[j] as number, 10);
    });
  });
}

describe('soft vote', () => {
  it('averages the members probabilities per class', () => {
    const out = softVote([m('a', [[0.9, 0.1]]), m('b', [[0.6, 0.4]]), m('c', [[0.3, 0.7]])], ctx(1));
    close(out.probabilities, [[0.6, 0.4]]);
    expect(out.labelIndex).toEqual([0]);
  });

  it('ignores weights', () => {
    const out = softVote([m('a', [[1, 0]], 10), m('b', [[0, 1]], 1)], ctx(1));
    close(out.probabilities, [[0.5, 0.5]]);
  });

  it('breaks an exact tie in favour of the label listed first', () => {
    expect(softVote([m('a', [[0.5, 0.5]])], ctx(1)).labelIndex).toEqual([0]);
  });
});

describe('weighted mean', () => {
  it('weights each member and renormalises over the members that answered', () => {
    // (3*0.8 + 1*0.2) / 4 = 0.65
    const out = weightedMean([m('a', [[0.8, 0.2]], 3), m('b', [[0.2, 0.8]], 1)], ctx(1));
    close(out.probabilities, [[0.65, 0.35]]);
  });

  it('handles several rows and three classes', () => {
    const out = weightedMean(
      [
        m(
          'a',
          [
            [0.2, 0.3, 0.5],
            [1, 0, 0],
          ],
          1,
        ),
        m(
          'b',
          [
            [0.5, 0.5, 0],
            [0, 0, 1],
          ],
          4,
        ),
      ],
      ctx(2, 3),
    );
    close(out.probabilities, [
      [0.44, 0.46, 0.1],
      [0.2, 0, 0.8],
    ]);
    expect(out.labelIndex).toEqual([1, 2]);
  });
});

describe('hard vote', () => {
  it('takes the majority label and reports vote shares', () => {
    const out = hardVote([m('a', [[0.9, 0.1]]), m('b', [[0.6, 0.4]]), m('c', [[0.1, 0.9]])], ctx(1));
    close(out.probabilities, [[2 / 3, 1 / 3]]);
    expect(out.labelIndex).toEqual([0]);
  });

  it('breaks a tied vote by the higher mean probability', () => {
    // votes 1:1; mean p(class 1) = (0.45+0.99)/2 = 0.72 > mean p(class 0) = 0.28
    const out = hardVote([m('a', [[0.55, 0.45]]), m('b', [[0.01, 0.99]])], ctx(1));
    expect(out.labelIndex).toEqual([1]);
    close(out.probabilities, [[0.5, 0.5]]);
  });

  it('breaks a tie in votes and mean probability by the label listed first', () => {
    const out = hardVote([m('a', [[0.7, 0.3]]), m('b', [[0.3, 0.7]])], ctx(1));
    expect(out.labelIndex).toEqual([0]);
  });

  it('counts weighted votes when the ensemble sets weights', () => {
    const out = hardVote([m('a', [[0.9, 0.1]], 1), m('b', [[0.9, 0.1]], 1), m('c', [[0.2, 0.8]], 3)], ctx(1));
    expect(out.labelIndex).toEqual([1]);
    close(out.probabilities, [[0.4, 0.6]]);
  });

  it('votes among three classes', () => {
    const out = hardVote(
      [m('a', [[0.1, 0.2, 0.7]]), m('b', [[0.1, 0.6, 0.3]]), m('c', [[0.2, 0.2, 0.6]])],
      ctx(1, 3),
    );
    expect(out.labelIndex).toEqual([2]);
    close(out.probabilities, [[0, 1 / 3, 2 / 3]]);
  });
});

describe('max', () => {
  it('keeps the most confident member per class and rescales the row to 1', () => {
    // max = [0.9, 0.7] -> [0.5625, 0.4375]
    const out = maxStrategy([m('a', [[0.9, 0.1]]), m('b', [[0.3, 0.7]])], ctx(1));
    close(out.probabilities, [[0.9 / 1.6, 0.7 / 1.6]]);
    expect(out.labelIndex).toEqual([0]);
  });
});

describe('median', () => {
  it('takes the middle member per class for an odd count', () => {
    // medians: [0.6, 0.4] (sum 1)
    const out = median([m('a', [[0.9, 0.1]]), m('b', [[0.6, 0.4]]), m('c', [[0.2, 0.8]])], ctx(1));
    close(out.probabilities, [[0.6, 0.4]]);
  });

  it('averages the middle two for an even count, then rescales', () => {
    // class 0: sorted [0.1,0.2,0.8,0.9] -> 0.5 ; class 1: sorted [0.1,0.2,0.8,0.9] -> 0.5
    const out = median(
      [m('a', [[0.9, 0.1]]), m('b', [[0.8, 0.2]]), m('c', [[0.2, 0.8]]), m('d', [[0.1, 0.9]])],
      ctx(1),
    );
    close(out.probabilities, [[0.5, 0.5]]);
  });

  it('is robust to one wild member where the mean is not', () => {
    const members = [m('a', [[0.8, 0.2]]), m('b', [[0.7, 0.3]]), m('c', [[0, 1]])];
    expect(median(members, ctx(1)).labelIndex).toEqual([0]);
    expect(softVote(members, ctx(1)).probabilities[0]?.[0]).toBeCloseTo(0.5, 10);
  });
});

describe('stacking', () => {
  const meta = {
    type: 'softmax-linear' as const,
    members: ['a', 'b'],
    labels: ['x', 'y'],
    coef: [
      [0, 0, 0, 0],
      [0, 2, 0, 1],
    ],
    intercept: [0, -1],
    featureMeans: [0.5, 0.5, 0.2, 0.8],
  };

  it('applies the meta-model to the members scores concatenated in manifest order', () => {
    // z1 = 2*0.75 + 1*0.5 - 1 = 1 ; p(y) = sigmoid(1)
    const out = stacking([m('a', [[0.25, 0.75]]), m('b', [[0.5, 0.5]])], {
      ...ctx(1, 2, ['a', 'b']),
      stacking: meta,
    });
    const py = 1 / (1 + Math.exp(-1));
    close(out.probabilities, [[1 - py, py]]);
    expect(out.labelIndex).toEqual([1]);
  });

  it('imputes a member that did not answer with its mean out-of-fold scores', () => {
    // b missing -> x = [0.25, 0.75, 0.2, 0.8]; z1 = 1.5 + 0.8 - 1 = 1.3
    const out = stacking([m('a', [[0.25, 0.75]])], { ...ctx(1, 2, ['a', 'b']), stacking: meta });
    const py = 1 / (1 + Math.exp(-1.3));
    close(out.probabilities, [[1 - py, py]]);
  });

  it('refuses to run without a meta-model', () => {
    expect(() => stacking([m('a', [[1, 0]])], ctx(1))).toThrow('meta-model');
  });
});

describe('helpers', () => {
  it('argmax prefers the first of equal values', () => {
    expect(argmax([0.2, 0.4, 0.4])).toBe(1);
  });

  it('softmax is stable for large logits and sums to 1', () => {
    const p = softmax([1000, 1001]);
    expect(p[0]! + p[1]!).toBeCloseTo(1, 12);
    expect(p[1]).toBeCloseTo(1 / (1 + Math.exp(-1)), 12);
  });
});
