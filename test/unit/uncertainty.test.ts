import { combine, type MemberInfo } from '../../functions/core/combine.js';
import type { EnsembleSpec, StackingModel } from '../../functions/core/manifest.js';
import { UNCERTAINTY_COLUMNS, uncertainty, uncertaintyRow } from '../../functions/core/uncertainty.js';

const info = (): MemberInfo => ({ version: '1', kind: 'onnx' });
const meta = { id: 'u-1', createdAt: '2026-11-28T00:00:00.000Z' };
const ok = (model: string, probabilities: number[][]) => ({ model, status: 'ok', probabilities });

/** A two-label ensemble of members a, b, c with the given strategy. */
const spec = (strategy: EnsembleSpec['strategy'], extra: Partial<EnsembleSpec> = {}): EnsembleSpec => ({
  name: `e-${strategy}`,
  members: ['a', 'b', 'c'],
  weights: [1, 1, 1],
  strategy,
  quorum: 1,
  features: ['x'],
  labels: ['no', 'yes'],
  ...extra,
});

describe('uncertainty: the four measures, by hand', () => {
  it('members that disagree: agreement 2/3, margin 0.2, entropy H(0.6, 0.4), spread 0.2494', () => {
    // Members a = (0.9, 0.1), b = (0.6, 0.4), c = (0.3, 0.7); soft vote = (0.6, 0.4), label "no".
    // agreement: a and b pick "no", c picks "yes" -> 2 / 3.
    // margin: 0.6 - 0.4 = 0.2.
    // entropy: -(0.6 ln 0.6 + 0.4 ln 0.4) / ln 2 = (0.306495 + 0.366516) / 0.693147 = 0.970951.
    // spread: per label the values are {0.9, 0.6, 0.3} and {0.1, 0.4, 0.7}; each has mean 0.6 (0.4)
    //   and squared deviations 0.09, 0, 0.09 -> variance 0.06, sd sqrt(0.06) = 0.244949; the mean of
    //   the two labels' sds is 0.244949.
    const u = uncertainty([0.6, 0.4], 0, [
      [0.9, 0.1],
      [0.6, 0.4],
      [0.3, 0.7],
    ]);
    expect(u.agreement).toBeCloseTo(2 / 3, 12);
    expect(u.margin).toBeCloseTo(0.2, 12);
    expect(u.entropy).toBeCloseTo(0.970951, 6);
    expect(u.spread).toBeCloseTo(0.244949, 6);
  });

  it('members that agree: agreement 1, a wide margin, low entropy and spread', () => {
    // Members (0.98, 0.02), (0.96, 0.04), (0.99, 0.01) -> mean (0.976667, 0.023333).
    // margin: 0.976667 - 0.023333 = 0.953333.
    // entropy: -(0.976667 ln 0.976667 + 0.023333 ln 0.023333) / ln 2
    //        = (0.976667 * 0.023609 + 0.023333 * 3.757888) / 0.693147
    //        = (0.023058 + 0.087683) / 0.693147 = 0.159766.
    // spread: label "no" values 0.98, 0.96, 0.99 around 0.976667: deviations 0.003333, -0.016667,
    //   0.013333; squares 0.0000111, 0.0002778, 0.0001778 sum 0.0004667, / 3 = 0.0001556,
    //   sd 0.012472; label "yes" mirrors it; spread 0.012472.
    const members = [
      [0.98, 0.02],
      [0.96, 0.04],
      [0.99, 0.01],
    ];
    const u = uncertainty([0.976667, 0.023333], 0, members);
    expect(u).toEqual({
      agreement: 1,
      margin: expect.closeTo(0.953333, 5),
      entropy: expect.closeTo(0.159766, 5),
      spread: expect.closeTo(0.012472, 5),
    });
  });

  it('normalises the entropy by log(C): three labels, uniform probabilities, entropy exactly 1', () => {
    // -(3 * 1/3 ln 1/3) / ln 3 = ln 3 / ln 3 = 1; margin 1/3 - 1/3 = 0.
    const u = uncertainty([1 / 3, 1 / 3, 1 / 3], 0, [[1 / 3, 1 / 3, 1 / 3]]);
    expect(u.entropy).toBeCloseTo(1, 12);
    expect(u.margin).toBe(0);
  });

  it('three labels: entropy of (0.5, 0.3, 0.2) over ln 3 = 0.937231, margin 0.2', () => {
    // -(0.5 ln 0.5 + 0.3 ln 0.3 + 0.2 ln 0.2) = 0.346574 + 0.361192 + 0.321888 = 1.029653;
    // divided by ln 3 = 1.098612: 0.937231.
    const u = uncertainty([0.5, 0.3, 0.2], 0, [[0.5, 0.3, 0.2]]);
    expect(u.entropy).toBeCloseTo(0.937231, 6);
    expect(u.margin).toBeCloseTo(0.2, 12);
  });

  it('a certain answer: entropy 0 (0 ln 0 taken as 0), margin 1', () => {
    expect(uncertainty([1, 0], 0, [[1, 0]])).toEqual({ agreement: 1, margin: 1, entropy: 0, spread: 0 });
  });

  it('one counted member: agreement 1 and spread 0 whatever its probabilities', () => {
    const u = uncertainty([0.55, 0.45], 0, [[0.55, 0.45]]);
    expect(u.agreement).toBe(1);
    expect(u.spread).toBe(0);
  });

  it('members split half at 0 and half at 1: the largest spread, 0.5', () => {
    // values {1, 0} per label: mean 0.5, deviations +-0.5, variance 0.25, sd 0.5.
    const u = uncertainty([0.5, 0.5], 0, [
      [1, 0],
      [0, 1],
    ]);
    expect(u.spread).toBe(0.5);
    expect(u.agreement).toBe(0.5);
    expect(u.margin).toBe(0);
    expect(u.entropy).toBeCloseTo(1, 12);
  });

  it('a member whose probabilities tie picks the label listed first, as its record shows', () => {
    // (0.5, 0.5) has top label "no" (index 0): it agrees with an answer of "no", not of "yes".
    expect(uncertainty([0.6, 0.4], 0, [[0.5, 0.5]]).agreement).toBe(1);
    expect(uncertainty([0.4, 0.6], 1, [[0.5, 0.5]]).agreement).toBe(0);
  });

  it('lists the columns in one fixed order', () => {
    expect(UNCERTAINTY_COLUMNS).toEqual(['agreement', 'margin', 'entropy', 'spread']);
    expect(uncertaintyRow({ agreement: 1, margin: 0.5, entropy: 0.25, spread: 0.125 })).toEqual([
      1, 0.5, 0.25, 0.125,
    ]);
  });
});

describe('uncertainty in combine, for every strategy', () => {
  const members = [ok('a', [[0.9, 0.1]]), ok('b', [[0.6, 0.4]]), ok('c', [[0.3, 0.7]])];

  it('soft vote: the figures above, on the record', () => {
    const [p] = combine(spec('soft-vote'), members, 1, info, meta).predictions;
    expect(p?.label).toBe('no');
    expect(p?.uncertainty.agreement).toBeCloseTo(2 / 3, 12);
    expect(p?.uncertainty.margin).toBeCloseTo(0.2, 12);
    expect(p?.uncertainty.spread).toBeCloseTo(0.244949, 6);
  });

  it('weighted mean: weights shape the answer but agreement and spread stay unweighted', () => {
    // weights 1, 1, 4: no = (0.9 + 0.6 + 4 * 0.3) / 6 = 0.45, yes = 0.55 -> "yes", margin 0.1.
    // agreement: only c picks "yes" -> 1 / 3 (not 4 / 6).
    const e = spec('weighted-mean', { weights: [1, 1, 4] });
    const [p] = combine(e, members, 1, info, meta).predictions;
    expect(p?.label).toBe('yes');
    expect(p?.uncertainty.agreement).toBeCloseTo(1 / 3, 12);
    expect(p?.uncertainty.margin).toBeCloseTo(0.1, 12);
    expect(p?.uncertainty.spread).toBeCloseTo(0.244949, 6);
  });

  it('hard vote: margin and entropy from the vote shares, spread from the members’ probabilities', () => {
    // votes: no 2, yes 1 -> shares (2/3, 1/3); margin 1/3;
    // entropy -(2/3 ln 2/3 + 1/3 ln 1/3) / ln 2 = (0.270310 + 0.366204) / 0.693147 = 0.918296.
    const [p] = combine(spec('hard-vote'), members, 1, info, meta).predictions;
    expect(p?.label).toBe('no');
    expect(p?.uncertainty.agreement).toBeCloseTo(2 / 3, 12);
    expect(p?.uncertainty.margin).toBeCloseTo(1 / 3, 12);
    expect(p?.uncertainty.entropy).toBeCloseTo(0.918296, 6);
    expect(p?.uncertainty.spread).toBeCloseTo(0.244949, 6);
  });

  it('hard vote tie: a margin of 0, and agreement counts the members that voted for the winner', () => {
    // a votes no, b votes yes: shares (0.5, 0.5); the tie goes to the higher mean probability:
    // no = (0.9 + 0.2) / 2 = 0.55 > yes 0.45 -> "no". agreement 1/2, margin 0, entropy 1.
    const [p] = combine(
      spec('hard-vote', { members: ['a', 'b'], weights: [1, 1] }),
      [ok('a', [[0.9, 0.1]]), ok('b', [[0.2, 0.8]])],
      1,
      info,
      meta,
    ).predictions;
    expect(p?.label).toBe('no');
    expect(p?.uncertainty).toEqual({
      agreement: 0.5,
      margin: 0,
      entropy: 1,
      spread: expect.closeTo(0.35, 12),
    });
  });

  it('max and median: margin and entropy from the rescaled probabilities', () => {
    // max: no = 0.9, yes = 0.7 -> rescaled (0.5625, 0.4375), margin 0.125.
    const [mx] = combine(spec('max'), members, 1, info, meta).predictions;
    expect(mx?.label).toBe('no');
    expect(mx?.uncertainty.margin).toBeCloseTo(0.125, 12);
    // median: no = 0.6, yes = 0.4 (already sums to 1), margin 0.2.
    const [md] = combine(spec('median'), members, 1, info, meta).predictions;
    expect(md?.uncertainty.margin).toBeCloseTo(0.2, 12);
    expect(md?.uncertainty.agreement).toBeCloseTo(2 / 3, 12);
  });

  it('stacking: from the meta-model’s probabilities; a failed member is imputed but not counted', () => {
    // Meta-model: z_yes = 4 * (b's yes) - 2, z_no = 0. With b = (0.6, 0.4): z_yes = -0.4,
    // p_yes = 1 / (1 + e^0.4) = 0.401312, p_no = 0.598688 -> "no", margin 0.197375.
    const stacking: StackingModel = {
      type: 'softmax-linear',
      members: ['a', 'b', 'c'],
      labels: ['no', 'yes'],
      coef: [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 4, 0, 0],
      ],
      intercept: [0, -2],
      featureMeans: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    };
    const e = spec('stacking', { stacking });
    const record = combine(
      e,
      [ok('a', [[0.9, 0.1]]), ok('b', [[0.6, 0.4]]), { model: 'c', status: 'failed' }],
      1,
      info,
      meta,
    );
    const [p] = record.predictions;
    expect(p?.label).toBe('no');
    expect(p?.uncertainty.margin).toBeCloseTo(0.197375, 6);
    // Only a and b answered, both "no": agreement 1; spread per label sd{0.9, 0.6} = 0.15.
    expect(p?.uncertainty.agreement).toBe(1);
    expect(p?.uncertainty.spread).toBeCloseTo(0.15, 12);
  });

  it('one uncertainty per row', () => {
    const record = combine(
      spec('soft-vote'),
      [
        ok('a', [
          [0.9, 0.1],
          [0.2, 0.8],
        ]),
        ok('b', [
          [0.8, 0.2],
          [0.2, 0.8],
        ]),
        ok('c', [
          [0.1, 0.9],
          [0.2, 0.8],
        ]),
      ],
      2,
      info,
      meta,
    );
    expect(record.predictions.map((p) => p.uncertainty.agreement)).toEqual([2 / 3, 1]);
    expect(record.predictions[1]?.uncertainty.spread).toBe(0);
  });
});
