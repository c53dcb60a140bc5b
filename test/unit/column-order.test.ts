import { bestColumnOrder } from '../../cli/model-scores.js';

/** Rows scored by a model that is right on `right` of `targets.length` rows, columns as given. */
function scored(targets: number[], classes: number, right: number, order?: number[]): number[][] {
  return targets.map((t, i) => {
    const label = i < right ? t : (t + 1) % classes;
    const column = order ? order.indexOf(label) : label;
    return Array.from({ length: classes }, (_, c) => (c === column ? 0.8 : 0.2 / (classes - 1)));
  });
}

const targets = (n: number, classes: number) => Array.from({ length: n }, (_, i) => i % classes);

describe('bestColumnOrder: the output order that fits the labels', () => {
  it('keeps the order of a model whose columns are the label set', () => {
    const t = targets(100, 3);
    expect(bestColumnOrder(scored(t, 3, 95), t)).toEqual({ order: [0, 1, 2], accuracy: 0.95 });
  });

  it('finds a binary model whose classes come out reversed', () => {
    const t = targets(200, 2);
    const best = bestColumnOrder(scored(t, 2, 190, [1, 0]), t);
    expect(best).toEqual({ order: [1, 0], accuracy: 0.95 });
  });

  it('finds a three-class model whose columns are rotated (labels sorted by name)', () => {
    const t = targets(90, 3);
    expect(bestColumnOrder(scored(t, 3, 90, [2, 0, 1]), t)).toEqual({ order: [2, 0, 1], accuracy: 1 });
  });

  it('gives a weak but honest model its own order', () => {
    const t = targets(100, 2);
    expect(bestColumnOrder(scored(t, 2, 60), t).order).toEqual([0, 1]);
  });

  it('orders ten classes greedily, past what trying every order allows', () => {
    const t = targets(500, 10);
    const shifted = Array.from({ length: 10 }, (_, c) => (c + 3) % 10);
    expect(bestColumnOrder(scored(t, 10, 500, shifted), t)).toEqual({ order: shifted, accuracy: 1 });
  });
});
