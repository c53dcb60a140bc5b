import { CANARY_BUCKETS, canaryBucket, evenlySpread, routeRequest } from '../../functions/core/canary.js';
import { type EnsembleSpec, type Manifest, parseManifest } from '../../functions/core/manifest.js';

/** Two ensembles over the same model set; `live` sends `percent` to `next`. */
function manifestWith(percent: number): Manifest {
  return parseManifest(
    {
      featureSets: { xy: ['x', 'y'] },
      labelSets: { yesno: ['no', 'yes'] },
      models: ['a', 'b'].map((id) => ({
        id,
        kind: 'onnx',
        file: `${id}.onnx`,
        version: '1',
        features: 'xy',
        labels: 'yesno',
      })),
      ensembles: [
        { name: 'live', members: ['a'], strategy: 'soft-vote', canary: { ensemble: 'next', percent } },
        { name: 'next', members: ['a', 'b'], strategy: 'soft-vote' },
      ],
    },
    `/tmp/canary-${percent}.json`,
  );
}

const live = (m: Manifest) => m.ensembles.get('live') as EnsembleSpec;
const ids = (n: number) => Array.from({ length: n }, (_, i) => `client-${i}`);

describe('canaryBucket', () => {
  it('is the first four bytes of sha256("<ensemble>\\n<id>") modulo 10,000', () => {
    // printf 'breast-cancer\nclient-1' | sha256sum -> 8bdf7d4b...; 0x8bdf7d4b = 2346679627;
    // 2346679627 mod 10000 = 9627.
    expect(canaryBucket('breast-cancer', 'client-1')).toBe(9627);
  });

  it('depends on the ensemble too, so two canaries do not pick the same clients', () => {
    const same = ids(1000).filter((id) => canaryBucket('a', id) === canaryBucket('b', id));
    expect(same.length).toBeLessThan(10);
  });
});

describe('routeRequest', () => {
  it('sends the canary the requests whose bucket is below percent * 100', () => {
    const m = manifestWith(10);
    expect(routeRequest(m, live(m), undefined, () => 0.0999).name).toBe('next');
    expect(routeRequest(m, live(m), undefined, () => 0.1).name).toBe('live');
    const byId = ids(200).map((id) => [id, routeRequest(m, live(m), id).name]);
    for (const [id, side] of byId) {
      expect(side).toBe(canaryBucket('live', id as string) < 1000 ? 'next' : 'live');
    }
  });

  it('sends the same client id to the same side every time, never at random', () => {
    const m = manifestWith(10);
    const coin = () => {
      throw new Error('not random with a client id');
    };
    for (const id of ids(50)) {
      const first = routeRequest(m, live(m), id, coin).name;
      for (let i = 0; i < 5; i++) expect(routeRequest(m, live(m), id, coin).name).toBe(first);
    }
  });

  it('gives the canary close to its share of 10,000 client ids', () => {
    const m = manifestWith(10);
    const onCanary = ids(10_000).filter((id) => routeRequest(m, live(m), id).name === 'next').length;
    // Binomial(10000, 0.1): sd 30; 4 sd either side.
    expect(onCanary).toBeGreaterThan(880);
    expect(onCanary).toBeLessThan(1120);
  });

  it('splits requests without a client id evenly: any 200 in a row give a 10% canary 19 to 22', () => {
    const m = manifestWith(10);
    const sides = Array.from({ length: 5000 }, () => routeRequest(m, live(m), undefined).name);
    for (let start = 0; start + 200 <= sides.length; start += 50) {
      const onCanary = sides.slice(start, start + 200).filter((s) => s === 'next').length;
      expect(onCanary).toBeGreaterThanOrEqual(19);
      expect(onCanary).toBeLessThanOrEqual(22);
    }
  });

  it('draws each ensemble its own evenly spread coin, uniform over [0, 1)', () => {
    const points = Array.from({ length: 1000 }, () => evenlySpread('coin-a'));
    Array.from({ length: 10 }, () => evenlySpread('coin-b'));
    const more = Array.from({ length: 1000 }, () => evenlySpread('coin-a'));
    for (const decile of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      const inDecile = [...points, ...more].filter((p) => Math.floor(p * 10) === decile).length;
      // Another ensemble's draws in between do not disturb this one's spread.
      expect(inDecile).toBeGreaterThanOrEqual(198);
      expect(inDecile).toBeLessThanOrEqual(202);
    }
  });

  it('keeps every id already on the canary there when the percent rises', () => {
    const low = manifestWith(10);
    const high = manifestWith(25);
    const wasCanary = ids(2000).filter((id) => routeRequest(low, live(low), id).name === 'next');
    expect(wasCanary.every((id) => routeRequest(high, live(high), id).name === 'next')).toBe(true);
  });

  it('sends nothing at 0 percent and everything at 100', () => {
    const none = manifestWith(0);
    const all = manifestWith(100);
    expect(routeRequest(none, live(none), undefined, () => 0).name).toBe('live');
    expect(routeRequest(all, live(all), undefined, () => 0.99999).name).toBe('next');
    expect(ids(500).every((id) => routeRequest(all, live(all), id).name === 'next')).toBe(true);
  });

  it('answers with the ensemble itself when it has no canary', () => {
    const m = manifestWith(50);
    const next = m.ensembles.get('next') as EnsembleSpec;
    expect(routeRequest(m, next, 'client-1', () => 0)).toBe(next);
  });

  it('uses 10,000 buckets: a split as fine as 0.01%', () => {
    expect(CANARY_BUCKETS).toBe(10_000);
    const m = manifestWith(0.01);
    expect(routeRequest(m, live(m), undefined, () => 0.00009).name).toBe('next');
    expect(routeRequest(m, live(m), undefined, () => 0.0001).name).toBe('live');
  });
});
